//! The device CLI follows the README's walk-through against the real local server: a key,
//! enrolment (step one, what the device shows, the signature, verify), the factor listed
//! ACTIVE, a new push token, a step-up approved and a payment declined from the device's
//! list; an unknown flag exits 2.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Command, Stdio},
};

/// One plain HTTP/1.1 request to the local server, as the app's backend would make it;
/// returns the status and the JSON body.
fn http(
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    token: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\napi-key: {key}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Starts the local server on a free port; returns it, its base URL and the demo api key and
/// token its banner prints.
fn start() -> (Server, String, String, String) {
    let server = env!("CARGO_BIN_EXE_factors-device").replace("factors-device", "local-server");
    let mut child = Command::new(server)
        .env("PORT", "0")
        .env_remove("PROGRAMMES_FILE")
        .env_remove("DYNAMODB_ENDPOINT")
        .env_remove("SNS_ENDPOINT")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("TABLE_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the local server is built with the workspace");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut key, mut token) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Additional Factors API on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("export API_KEY='") {
            key = rest.split('\'').next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("export TOKEN='") {
            token = rest.split('\'').next().map(str::to_owned);
        }
        if line.starts_with("curl ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Server(child), base.unwrap(), key.unwrap(), token.unwrap())
}

fn device(args: &[&str], base: &str, key: &str, token: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_factors-device"))
        .args(args)
        .env("API_URL", base)
        .env("API_KEY", key)
        .env("TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_walk_through_enrols_a_device_rotates_its_push_token_and_answers_challenges() {
    let (_server, base, key, token) = start();
    let dir = std::env::temp_dir().join(format!("factors-device-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("device-key.p8");
    let key_file = key_file.to_str().unwrap();
    let (code, out) = device(&["keygen", "--key", key_file], &base, &key, &token);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"crv\":\"P-256\""), "{out}");
    let (code, out) = device(
        &[
            "enrol",
            "--key",
            key_file,
            "--push-token",
            "token-1",
            "--name",
            "Pixel 8",
        ],
        &base,
        &key,
        &token,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("step one: 200"), "{out}");
    assert!(
        out.contains("add this device as a security factor"),
        "{out}"
    );
    assert!(out.contains("verify: 204"), "{out}");
    // Listed ACTIVE by the API.
    let (status, listing) = http(&base, "GET", "/authentication_factors", &key, &token, "");
    assert_eq!(status, 200);
    assert!(
        listing
            .to_string()
            .contains("\"channel\":\"BIOMETRIC\",\"status\":\"ACTIVE\""),
        "{listing}"
    );
    let (code, out) = device(
        &["push-token", "--key", key_file, "--push-token", "token-2"],
        &base,
        &key,
        &token,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("push token: 204"), "{out}");
    // A step-up pushed to the device: listed with what it shows, approved by its signature.
    let (status, started) = http(
        &base,
        "POST",
        "/stepup/challenges/push/BIOMETRIC",
        &key,
        &token,
        "",
    );
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (code, out) = device(&["list"], &base, &key, &token);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id) && out.contains("STEP_UP"), "{out}");
    assert!(out.contains("confirm it is you"), "{out}");
    let (code, out) = device(&["approve", "--key", key_file], &base, &key, &token);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approve: 204"), "{out}");
    let (_, status) = http(
        &base,
        "GET",
        &format!("/stepup/challenges/{id}"),
        &key,
        &token,
        "",
    );
    assert_eq!(status["status"], "VERIFIED", "{status}");
    // A payment pushed to the device, declined there.
    let payment = r#"{"reference": "cli-1", "amount": {"currency": "EUR", "value": 990},
        "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}}"#;
    let (status, started) = http(
        &base,
        "POST",
        "/challenges/push/BIOMETRIC",
        &key,
        &token,
        payment,
    );
    assert_eq!(status, 200, "{started}");
    let id = started["scaChallengeId"].as_str().unwrap().to_owned();
    let (code, out) = device(
        &["decline", "--key", key_file, "--id", &id],
        &base,
        &key,
        &token,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("EUR 9.90 to Acme Ltd (GB29...6819)"), "{out}");
    let (_, status) = http(&base, "GET", &format!("/challenges/{id}"), &key, &token, "");
    assert_eq!(status["status"], "DECLINED", "{status}");
    // Nothing left to answer.
    let (code, out) = device(&["approve", "--key", key_file], &base, &key, &token);
    assert_eq!(code, 1, "{out}");
    // Enrolling the same key again: it is registered.
    let (code, out) = device(&["enrol", "--key", key_file], &base, &key, &token);
    assert_eq!(code, 1, "{out}");
    // An unknown flag or command exits 2.
    let (code, out) = device(&["enrol", "--nope", "x"], &base, &key, &token);
    assert_eq!(code, 2, "{out}");
    assert_eq!(device(&["fly"], &base, &key, &token).0, 2);
    let _ = std::fs::remove_dir_all(&dir);
}
