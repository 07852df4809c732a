//! The events the bench sends: `events/` files, a callback signed now, an attacker's 6 MB body.

use super::*;

pub(crate) fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

pub(crate) fn read_event(events: &Path, prefix: &str) -> Result<String, BoxError> {
    let name = std::fs::read_dir(events)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.split_once('-')
                .is_some_and(|(_, rest)| rest.starts_with(prefix))
        })
        .ok_or_else(|| format!("no event {prefix}"))?;
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(events.join(name))?)?;
    // Each cold process must do the real work, not replay a kept response.
    if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
        headers.remove("idempotency-ref");
    }
    Ok(event.to_string())
}

/// A callback event signed now with the deployment's Authy key (`events/env.json`), as Authy
/// sends a genuine one.
pub(crate) fn signed_now(event: &str, env_json: &Value) -> Result<String, BoxError> {
    let mut event: Value = serde_json::from_str(event)?;
    let key = env_json["AUTHY_API_KEY"]
        .as_str()
        .ok_or("no AUTHY_API_KEY")?;
    let url = env_json["AUTHY_CALLBACK_URL"]
        .as_str()
        .ok_or("no AUTHY_CALLBACK_URL")?;
    let body: Value = serde_json::from_str(event["body"].as_str().ok_or("no body")?)?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let signature =
        additional_factors::push::authy_signature::sign(key, &nonce, "POST", url, &body);
    let headers = event["headers"].as_object_mut().ok_or("no headers")?;
    headers.insert("x-authy-signature-nonce".into(), Value::String(nonce));
    headers.insert("x-authy-signature".into(), Value::String(signature));
    Ok(serde_json::to_string(&event)?)
}

/// The usual event with what a stranger sends instead: a 6 MB `[0,0,0,...]` body (the
/// shape that cost 984 MB when parsed whole), an `idempotency-ref` (the fingerprint used to
/// parse the body), and a fresh Authy nonce with a wrong signature (the callback used to
/// parse before it verified).
pub(crate) fn attack_event(usual: &str) -> Result<String, BoxError> {
    let mut event: Value = serde_json::from_str(usual)?;
    let mut body = String::with_capacity(6 * 1024 * 1024 + 2);
    body.push_str("[0");
    while body.len() < 6 * 1024 * 1024 {
        body.push_str(",0");
    }
    body.push(']');
    event["body"] = Value::String(body);
    event["isBase64Encoded"] = Value::Bool(false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let headers = event["headers"]
        .as_object_mut()
        .ok_or("an event without headers")?;
    headers.insert("idempotency-ref".into(), Value::String("attack-1".into()));
    if headers.contains_key("x-authy-signature") {
        headers.insert(
            "x-authy-signature-nonce".into(),
            Value::String(now.to_string()),
        );
        headers.insert("x-authy-signature".into(), Value::String("AAAA".into()));
    }
    Ok(serde_json::to_string(&event)?)
}

/// The live programme's api key (`bench-live`: SMS really sent, through SNS).
pub(crate) const LIVE_API_KEY: &str = "bench-live-api-key";

/// A function run on a live programme's request: `<binary> live`.
pub(crate) fn binary_of(function: &str) -> &str {
    function.strip_suffix(" live").unwrap_or(function)
}

/// `event` as a live programme's user sends it: the live api key, and a token for the live
/// programme (signed with the events' HS256 key, issued now, one hour long).
pub(crate) fn live_event(event: &str, env: &Value) -> Result<String, BoxError> {
    use base64::Engine as _;
    let mut event: Value = serde_json::from_str(event)?;
    let headers = event
        .get_mut("headers")
        .and_then(Value::as_object_mut)
        .ok_or("an event without headers")?;
    headers.insert("api-key".into(), LIVE_API_KEY.into());
    let token = headers
        .get("authorization")
        .and_then(Value::as_str)
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or("an event without a token")?;
    let payload = token.split('.').nth(1).ok_or("a malformed token")?;
    let mut claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    claims["programme_id"] = "bench-live".into();
    claims["iat"] = now.into();
    claims["exp"] = (now + 3_600).into();
    let secret = env["JWT_HS256_SECRET"]
        .as_str()
        .ok_or("env.json has no JWT_HS256_SECRET")?;
    let token = additional_factors::auth::mint_hs256(secret.as_bytes(), &claims)?;
    headers.insert("authorization".into(), format!("Bearer {token}").into());
    Ok(serde_json::to_string(&event)?)
}
