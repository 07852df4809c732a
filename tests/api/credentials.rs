//! `api-key` and bearer token: every refusal, and the order of the checks.

use additional_factors::domain::programme::Programme;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_405_before_any_credential() {
    let t = TestApp::new().await;
    for path in [
        "/nope",
        "/authentication_factors/otp",
        "/authentication_factors/",
        "/authentication_factors/otp/SMS/verify/x",
    ] {
        let r = t.send(Req::get(path)).await;
        r.assert(404);
        assert_eq!(r.body["code"], "NOT_FOUND");
        assert!(r.body["message"].is_string());
    }
    for (method, path, allow) in [
        ("POST", LIST, "GET"),
        ("DELETE", SMS, "POST"),
        ("GET", VERIFY, "POST"),
        ("GET", AUTHY, "POST, DELETE, PUT"),
        ("PUT", ACCEPT, "POST"),
    ] {
        let r = t.send(Req::new(method, path)).await;
        r.assert(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(r.body["code"], "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn missing_api_key_is_400_naming_the_header() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    for req in [
        Req::get(LIST).bearer(&token),
        Req::post(SMS),
        Req::post(VERIFY).key("  "),
    ] {
        t.send(req).await.assert_field("api-key", "REQUIRED", &[]);
    }
}

#[tokio::test]
async fn unknown_or_disabled_api_key_is_an_empty_401() {
    let t = TestApp::new().await;
    let mut disabled = Programme::new("off", true);
    disabled.disabled = true;
    t.add_programme("disabled-programme-key-1", disabled).await;
    for (key, programme) in [("no-such-key", "live"), ("disabled-programme-key-1", "off")] {
        let r = t
            .send(Req::get(LIST).auth(key, &t.token(programme, "u1")))
            .await;
        r.assert(401);
        assert_eq!(r.raw, "");
    }
}

#[tokio::test]
async fn every_bad_token_is_an_empty_401() {
    let t = TestApp::new().await;
    let now = t.now();
    let good = t.token("live", "u1");
    let mut bad: Vec<(&str, String)> = vec![
        (
            "expired beyond leeway",
            t.token_with("live", "u1", json!({"exp": now - 30})),
        ),
        (
            "not yet valid beyond leeway",
            t.token_with("live", "u1", json!({"nbf": now + 31})),
        ),
        (
            "wrong issuer",
            t.token_with("live", "u1", json!({"iss": "https://evil"})),
        ),
        (
            "wrong audience",
            t.token_with("live", "u1", json!({"aud": "other"})),
        ),
        (
            "audience array without ours",
            t.token_with("live", "u1", json!({"aud": ["a", "b"]})),
        ),
        ("no exp", t.token_with("live", "u1", json!({"exp": null}))),
        ("no iss", t.token_with("live", "u1", json!({"iss": null}))),
        ("no aud", t.token_with("live", "u1", json!({"aud": null}))),
        ("no sub", t.token_with("live", "u1", json!({"sub": null}))),
        ("empty sub", t.token_with("live", "u1", json!({"sub": ""}))),
        (
            "no programme_id",
            t.token_with("live", "u1", json!({"programme_id": null})),
        ),
        ("another programme", t.token("sbx", "u1")),
        (
            "numeric programme_id",
            t.token_with("live", "u1", json!({"programme_id": 7})),
        ),
        ("truncated", good[..good.len() - 5].to_owned()),
        ("signed with another secret", {
            let claims = t.claims("live", "u1");
            additional_factors::auth::mint_hs256(b"another-secret-another-secret-xx", &claims)
                .unwrap()
        }),
        ("oversized", format!("{good}{}", "A".repeat(8 * 1024))),
    ];
    // alg none: header {"alg":"none","typ":"JWT"}, the good payload, no signature.
    let payload = good.split('.').nth(1).unwrap();
    bad.push((
        "alg none",
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
    ));
    // HS384 is not allowed for our key even with the right secret.
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &t.claims("live", "u1"),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    t.secret(&hs384);
    bad.push(("HS384", hs384));
    for (why, token) in &bad {
        let r = t.send(Req::get(LIST).auth(LIVE_KEY, token)).await;
        assert_eq!(r.status, 401, "{why}");
        assert_eq!(r.raw, "", "{why}");
    }
    for header in [
        format!("bearer {good}"),
        format!("Bearer  {good}"),
        format!("Token {good}"),
        "Bearer".into(),
        good.clone(),
    ] {
        let r = t
            .send(Req::get(LIST).key(LIVE_KEY).header("authorization", header))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = t.send(Req::get(LIST).key(LIVE_KEY)).await;
    assert_eq!((r.status, r.raw.as_str()), (401, ""));
}

#[tokio::test]
async fn leeway_and_audience_arrays_are_honoured() {
    let t = TestApp::new().await;
    let now = t.now();
    for (why, token) in [
        (
            "expired within leeway",
            t.token_with("live", "u1", json!({"exp": now - 29})),
        ),
        (
            "nbf within leeway",
            t.token_with("live", "u1", json!({"nbf": now + 29})),
        ),
        (
            "audience in an array",
            t.token_with("live", "u1", json!({"aud": ["x", AUDIENCE]})),
        ),
    ] {
        assert_eq!(
            t.send(Req::get(LIST).auth(LIVE_KEY, &token)).await.status,
            200,
            "{why}"
        );
    }
}

#[tokio::test]
async fn a_token_of_programme_a_with_the_key_of_programme_b_is_refused_everywhere() {
    let t = TestApp::new().await;
    let token_a = t.token("live", "u1");
    for req in [
        Req::get(LIST),
        Req::post(SMS),
        Req::post(VERIFY),
        Req::post(AUTHY),
        Req::delete(AUTHY),
        Req::post(ACCEPT),
    ] {
        let r = t.send(req.auth(SANDBOX_KEY, &token_a)).await;
        assert_eq!((r.status, r.raw.as_str()), (401, ""));
    }
    assert!(t.sms.sent().is_empty());
}

#[tokio::test]
async fn credentials_are_checked_before_validation() {
    let t = TestApp::new().await;
    // Bad channel, bad body, bad idempotency-ref — but no token: 401 wins.
    let r = t
        .send(
            Req::post("/authentication_factors/otp/EMAIL/verify")
                .key(LIVE_KEY)
                .idem("a b")
                .body("{"),
        )
        .await;
    assert_eq!(r.status, 401);
    // No api key: 400 naming the api key only.
    let r = t
        .send(Req::post("/authentication_factors/otp/EMAIL/verify").body("{"))
        .await;
    r.assert_field("api-key", "REQUIRED", &[]);
    assert_eq!(r.fields().len(), 1);
}

/// Key rotation at the identity service: a token verifies with the key before a rotation
/// (HS256 previous key) and with the public keys of a JWKS (by `kid`); a token signed by a
/// key in neither is refused, and a JWKS with no usable public key is a configuration error.
#[tokio::test]
async fn tokens_verify_with_the_previous_hs256_key_and_with_jwks_public_keys() {
    use additional_factors::{
        auth::{mint_hs256, TokenError, TokenVerifier},
        proof::{jwks, local::LocalSigner, sign_proof},
    };
    let (iss, aud) = ("https://identity.local", "additional-factors");
    let identity = LocalSigner::generate().unwrap();
    let stranger = LocalSigner::generate().unwrap();
    let published = jwks(&identity).await.unwrap().to_string();
    let current = b"the-current-hs256-key-at-least-32-bytes";
    let previous = b"the-previous-hs256-key-at-least-32-bytes";
    let verifier = TokenVerifier::new(Some(current), None, iss, aud)
        .unwrap()
        .with_hs256(previous)
        .with_jwks(&published)
        .unwrap();
    let now = 1_800_000_000i64;
    let claims = json!({
        "sub": "u1", "programme_id": "p1", "iss": iss, "aud": aud, "exp": now + 600,
    });
    let bearer = |token: String| format!("Bearer {token}");
    let check = |token: String| {
        verifier
            .verify(Some(bearer(token).as_bytes()), now)
            .map(|user| user.credential_id)
    };
    assert_eq!(check(mint_hs256(current, &claims).unwrap()).unwrap(), "u1");
    assert_eq!(check(mint_hs256(previous, &claims).unwrap()).unwrap(), "u1");
    assert_eq!(
        check(mint_hs256(b"a-key-never-configured-at-least-32-bytes", &claims).unwrap()),
        Err(TokenError::Signature)
    );
    // ES256 with the kid of a JWKS key.
    assert_eq!(
        check(sign_proof(&identity, &claims).await.unwrap()).unwrap(),
        "u1"
    );
    // Another key, under a kid the JWKS does not have, and under the JWKS key's kid.
    assert_eq!(
        check(sign_proof(&stranger, &claims).await.unwrap()),
        Err(TokenError::Signature)
    );
    let forged = sign_proof(&stranger, &claims).await.unwrap();
    let kid = serde_json::from_str::<serde_json::Value>(&published).unwrap()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let (_, rest) = forged.split_once('.').unwrap();
    use base64::Engine;
    let relabelled = format!(
        "{}.{rest}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string())
    );
    assert_eq!(check(relabelled), Err(TokenError::Signature));
    // Only the HS256 keys verify HS256; a JWKS of symmetric keys only is refused.
    let symmetric = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}).to_string();
    assert!(TokenVerifier::refusing(iss, aud)
        .with_jwks(&symmetric)
        .is_err());
    assert!(!TokenVerifier::refusing(iss, aud).has_keys());
}
