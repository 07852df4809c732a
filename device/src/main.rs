//! `factors-device`: plays the programme's mobile app for a BIOMETRIC factor, against the local
//! server or a deployment. The device key is a P-256 key in a PKCS#8 file (the real app keeps
//! it in the phone's secure hardware); every approval is an ECDSA P-256 signature by it over
//! what the API asked for.
//!
//! ```text
//! factors-device keygen     [--key FILE]
//! factors-device public-key [--key FILE]
//! factors-device enrol      [--key FILE] [--push-token T] [--platform FCM|APNS|APNS_SANDBOX] [--name NAME]
//! factors-device push-token [--key FILE] --push-token T
//! factors-device list
//! factors-device approve    [--key FILE] [--id CHALLENGE]
//! factors-device decline    [--key FILE] [--id CHALLENGE]
//! ```
//!
//! `list` prints the challenges waiting for the device (what each shows); `approve` and
//! `decline` sign the newest one (or `--id`) as the app would, after printing what it shows.
//!
//! `--url` (or `API_URL`, default `http://127.0.0.1:3000`), `--api-key` (or `API_KEY`) and
//! `--token` (or `TOKEN`) say where and as whom; `--key` defaults to `device-key.p8`. An
//! unknown command or flag exits 2.

use std::collections::HashMap;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str =
    "usage: factors-device keygen|public-key|enrol|push-token|list|approve|decline \
[--key FILE] [--url URL] [--api-key KEY] [--token TOKEN] [--push-token T] \
[--platform FCM|APNS|APNS_SANDBOX] [--name NAME] [--id CHALLENGE]";

const CHALLENGES: &str = "/authentication_factors/push/BIOMETRIC/challenges";

/// The flags each command takes.
fn allowed(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "keygen" | "public-key" => &["key"],
        "enrol" => &[
            "key",
            "url",
            "api-key",
            "token",
            "push-token",
            "platform",
            "name",
        ],
        "push-token" => &["key", "url", "api-key", "token", "push-token"],
        "list" => &["url", "api-key", "token"],
        "approve" | "decline" => &["key", "url", "api-key", "token", "id"],
        _ => return None,
    })
}

struct Args {
    command: String,
    options: HashMap<String, String>,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = raw.next().ok_or("no command")?;
    let flags = allowed(&command).ok_or_else(|| format!("unknown command {command:?}"))?;
    let mut options = HashMap::new();
    while let Some(flag) = raw.next() {
        let name = flag
            .strip_prefix("--")
            .filter(|n| flags.contains(n))
            .ok_or_else(|| format!("{command}: unknown flag {flag:?}"))?;
        let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
        options.insert(name.to_owned(), value);
    }
    Ok(Args { command, options })
}

impl Args {
    fn get(&self, name: &str, env: &str, default: Option<&str>) -> Result<String, Error> {
        self.options
            .get(name)
            .cloned()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| format!("--{name} (or {env}) is required").into())
    }

    fn key_file(&self) -> String {
        self.options
            .get("key")
            .cloned()
            .unwrap_or_else(|| "device-key.p8".into())
    }
}

fn load_key(path: &str) -> Result<EcdsaKeyPair, Error> {
    let pkcs8 = std::fs::read(path).map_err(|e| format!("{path}: {e} (run keygen first)"))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
        .map_err(|e| format!("{path}: not a P-256 PKCS#8 key: {e}").into())
}

fn jwk(key: &EcdsaKeyPair) -> Value {
    let point = key.public_key().as_ref();
    json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.get(1..33).unwrap_or_default()),
        "y": URL_SAFE_NO_PAD.encode(point.get(33..65).unwrap_or_default()),
    })
}

/// The signature (64-byte r||s, base64url) over `message`.
fn sign(key: &EcdsaKeyPair, message: &str) -> Result<String, Error> {
    let signature = key
        .sign(&SystemRandom::new(), message.as_bytes())
        .map_err(|_| "signing failed")?;
    Ok(URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// One request to the API; returns (status, body).
async fn call(
    args: &Args,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), Error> {
    let base = args.get("url", "API_URL", Some("http://127.0.0.1:3000"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.trim_end_matches('/')))
        .header("api-key", args.get("api-key", "API_KEY", None)?)
        .header(
            "authorization",
            format!("Bearer {}", args.get("token", "TOKEN", None)?),
        )
        .header("content-type", "application/json")
        .body(Full::new(
            body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        ))?;
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

async fn run(args: Args) -> Result<(), Error> {
    let key_file = args.key_file();
    match args.command.as_str() {
        "keygen" => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| "key generation failed")?;
            std::fs::write(&key_file, pkcs8.as_ref())?;
            println!("device key written to {key_file}");
            println!("{}", jwk(&load_key(&key_file)?));
        }
        "public-key" => println!("{}", jwk(&load_key(&key_file)?)),
        "enrol" => {
            let key = load_key(&key_file)?;
            let push_token = args.get("push-token", "PUSH_TOKEN", Some("local-device-token"))?;
            let body = json!({
                "publicKey": jwk(&key),
                "pushToken": push_token,
                "platform": args.get("platform", "PLATFORM", Some("FCM"))?,
                "deviceName": args.get("name", "DEVICE_NAME", Some("factors-device"))?,
            });
            let (status, started) = call(
                &args,
                "POST",
                "/authentication_factors/push/BIOMETRIC",
                Some(&body),
            )
            .await?;
            println!("step one: {status} {started}");
            let Some(input) = started["signingInput"].as_str() else {
                return Err(format!("step one answered {status}").into());
            };
            // What the app shows the user, read from the bytes it signs.
            let shown: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(input)?)?;
            println!(
                "the device shows: {}",
                shown["message"].as_str().unwrap_or("?")
            );
            let signature = sign(&key, &format!("{input}.ENROL"))?;
            let (status, answer) = call(
                &args,
                "POST",
                "/authentication_factors/push/BIOMETRIC/verify",
                Some(&json!({ "signature": signature })),
            )
            .await?;
            println!("verify: {status} {answer}");
            if status != 204 {
                return Err(format!("verify answered {status}").into());
            }
            println!("BIOMETRIC factor ACTIVE");
        }
        "push-token" => {
            let key = load_key(&key_file)?;
            let push_token = args.get("push-token", "PUSH_TOKEN", None)?;
            let signed_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let signature = sign(&key, &format!("push-token.{push_token}.{signed_at}"))?;
            let (status, answer) = call(
                &args,
                "PUT",
                "/authentication_factors/push/BIOMETRIC",
                Some(&json!({"pushToken": push_token, "signedAt": signed_at, "signature": signature})),
            )
            .await?;
            println!("push token: {status} {answer}");
            if status != 204 {
                return Err(format!("the update answered {status}").into());
            }
        }
        "list" => {
            for challenge in pending(&args).await? {
                println!(
                    "{} {} until {}: {}",
                    challenge["id"].as_str().unwrap_or("?"),
                    challenge["purpose"].as_str().unwrap_or("?"),
                    challenge["expiresAt"].as_str().unwrap_or("?"),
                    shown(&challenge)?["message"].as_str().unwrap_or("?")
                );
            }
        }
        "approve" | "decline" => {
            let key = load_key(&key_file)?;
            let challenges = pending(&args).await?;
            let chosen = match args.options.get("id") {
                Some(id) => challenges.iter().find(|c| c["id"] == id.as_str()),
                None => challenges.first(),
            };
            let Some(challenge) = chosen else {
                return Err("no pending challenge to answer".into());
            };
            let id = challenge["id"].as_str().unwrap_or_default();
            let input = challenge["signingInput"].as_str().unwrap_or_default();
            println!(
                "the device shows: {}",
                shown(challenge)?["message"].as_str().unwrap_or("?")
            );
            let decision = args.command.to_uppercase();
            let signature = sign(&key, &format!("{input}.{decision}"))?;
            let (status, answer) = call(
                &args,
                "POST",
                &format!("{CHALLENGES}/{id}"),
                Some(&json!({ "decision": decision, "signature": signature })),
            )
            .await?;
            println!("{}: {status} {answer}", args.command);
            if status != 204 {
                return Err(format!("the answer was {status}").into());
            }
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}

/// The challenges waiting for this device, newest first.
async fn pending(args: &Args) -> Result<Vec<Value>, Error> {
    let (status, listed) = call(args, "GET", CHALLENGES, None).await?;
    if status != 200 {
        return Err(format!("the list answered {status} {listed}").into());
    }
    Ok(listed["challenges"].as_array().cloned().unwrap_or_default())
}

/// What a challenge's signing input says: what the app shows, from the bytes it signs.
fn shown(challenge: &Value) -> Result<Value, Error> {
    let input = challenge["signingInput"].as_str().unwrap_or_default();
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(input)?)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("factors-device: {error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(args).await {
        eprintln!("factors-device: {error}");
        std::process::exit(1);
    }
}
