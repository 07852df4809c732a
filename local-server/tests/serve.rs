//! The local server binary, as a user runs it: the demo it prints, `PROGRAMMES_FILE`,
//! `SMS_OUTBOX`, and DynamoDB + SNS at a local endpoint. Its whole stderr (the log) is scanned
//! for the codes, keys, tokens and phone numbers used.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use additional_factors::auth::mint_hs256;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "serve-test-secret-serve-test-secret";
const LIVE_KEY: &str = "serve-live-key-0000000001";
const SANDBOX_KEY: &str = "serve-sandbox-key-0000001";

struct Server {
    child: Child,
    base: String,
    stdout: Vec<String>,
    stderr: PathBuf,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "serve-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server on a free port and reads its banner up to the first empty line or the
/// programmes line.
fn start(envs: &[(&str, String)]) -> Server {
    let dir = scratch();
    let stderr = dir.join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_local-server"));
    command
        .env("PORT", "0")
        .env_remove("PROGRAMMES_FILE")
        .env_remove("SMS_OUTBOX")
        .env_remove("DYNAMODB_ENDPOINT")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_ENDPOINT_URL_SNS")
        .env_remove("SNS_ENDPOINT")
        .env_remove("TABLE_NAME")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Additional Factors API on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        let done = line.starts_with("curl ") || line.starts_with("Programmes loaded");
        stdout.push(line);
        if done {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: base.expect("no banner"),
        stdout,
        stderr,
        dir,
    }
}

/// One HTTP/1.1 request; returns (status, lower-cased headers, body).
async fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, Value) {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap()
    };
    (status, headers, body)
}

fn mint(programme: &str, user: &str, phone: &str, mfa: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "sub": user, "programme_id": programme, "phone_number": phone,
        "iss": "https://identity.serve-test", "aud": "factors", "iat": now, "exp": now + 600,
    });
    if mfa {
        claims["amr"] = json!(["mfa"]);
    }
    mint_hs256(SECRET.as_bytes(), &claims).unwrap()
}

fn programmes_file(dir: &std::path::Path) -> String {
    let path = dir.join("programmes.json");
    let programmes = json!([
        {"id": "live", "apiKey": LIVE_KEY, "sandbox": false, "name": "Live Co", "smsSenderId": "LIVECO"},
        {"id": "sbx", "apiKey": SANDBOX_KEY, "sandbox": true, "sendLimits": {"perUserPerHour": 2}},
    ]);
    std::fs::write(&path, programmes.to_string()).unwrap();
    path.display().to_string()
}

fn common_env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("PROGRAMMES_FILE", programmes_file(dir)),
        ("JWT_HS256_SECRET", SECRET.into()),
        ("JWT_ISSUER", "https://identity.serve-test".into()),
        ("JWT_AUDIENCE", "factors".into()),
    ]
}

fn assert_log_clean(server: &Server, secrets: &[&str]) {
    let log = std::fs::read_to_string(&server.stderr).unwrap();
    assert!(log.contains("request_ref"), "the log was captured: {log}");
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "the log holds a secret ({} chars)",
            secret.len()
        );
    }
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_demo_banner_works_as_printed() {
    let server = start(&[]);
    let key = server
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("export API_KEY='"))
        .unwrap()
        .trim_end_matches('\'')
        .to_owned();
    let token_line = server
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("export TOKEN='"))
        .unwrap();
    let token = token_line.split('\'').next().unwrap().to_owned();
    assert!(server
        .stdout
        .iter()
        .any(|l| l.starts_with("curl -i -X POST ")));
    let auth = format!("Bearer {token}");
    let h = [("api-key", key.as_str()), ("authorization", auth.as_str())];
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/authentication_factors/otp/SMS",
            &h,
            ""
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/authentication_factors/otp/SMS/verify",
            &h,
            r#"{"verificationCode":"123456"}"#
        )
        .await
        .0,
        204
    );
    let (status, headers, body) =
        call(&server.base, "GET", "/authentication_factors", &h, "").await;
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "request-ref"));
    assert_eq!(
        body,
        json!({"factors": [{"type": "OTP", "channel": "SMS", "status": "ACTIVE"}]})
    );
    // The README walk-through goes on: step up with SMS, add Authy with the same (not
    // pre-stepped-up) token, approve it in the sandbox, list.
    for (method, path, body, status) in [
        ("POST", "/authentication_factors/push/AUTHY", "", 403),
        ("POST", "/stepup/challenges/otp/SMS", "", 204),
        (
            "POST",
            "/stepup/challenges/otp/SMS/verify",
            r#"{"verificationCode": "123456"}"#,
            204,
        ),
        ("POST", "/authentication_factors/push/AUTHY", "", 204),
        (
            "POST",
            "/simulate/authentication_factors/push/AUTHY/accept",
            "",
            204,
        ),
    ] {
        let (got, _, answer) = call(&server.base, method, path, &h, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
    }
    let (_, _, body) = call(&server.base, "GET", "/authentication_factors", &h, "").await;
    assert_eq!(
        body,
        json!({"factors": [
            {"type": "OTP", "channel": "SMS", "status": "ACTIVE"},
            {"type": "PUSH", "channel": "AUTHY", "status": "ACTIVE"}
        ]})
    );
    // A body over the route's cap is a 413 in the contract's format, read no further.
    let (status, headers, body) = call(
        &server.base,
        "POST",
        "/authentication_factors/otp/SMS/verify",
        &h,
        &" ".repeat(4 * 1024 + 1),
    )
    .await;
    assert_eq!(status, 413);
    assert!(headers.iter().any(|(k, _)| k == "request-ref"));
    assert!(body["message"].is_string());
    assert_log_clean(&server, &[&key, &token, "447700900123"]);
}

#[tokio::test]
async fn programmes_file_and_sms_outbox() {
    let dir = scratch();
    let outbox = dir.join("outbox.jsonl");
    let mut env = common_env(&dir);
    env.push(("SMS_OUTBOX", outbox.display().to_string()));
    let server = start(&env);
    assert!(server
        .stdout
        .iter()
        .any(|l| l == "Programmes loaded from PROGRAMMES_FILE: live, sbx"));
    assert!(
        !server.stdout.iter().any(|l| l.contains(LIVE_KEY)),
        "keys from the file are not printed"
    );
    let phone = "+447700900777";
    let token = mint("live", "u1", phone, false);
    let auth = format!("Bearer {token}");
    let h = [("api-key", LIVE_KEY), ("authorization", auth.as_str())];
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/authentication_factors/otp/SMS",
            &h,
            ""
        )
        .await
        .0,
        204
    );
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&outbox)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["to"], phone);
    let code = code_in(line["body"].as_str().unwrap());
    assert!(line["body"].as_str().unwrap().contains("Live Co"));
    let body = format!(r#"{{"verificationCode":"{code}"}}"#);
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/authentication_factors/otp/SMS/verify",
            &h,
            &body
        )
        .await
        .0,
        204
    );
    let (status, headers, body) = call(&server.base, "GET", "/nope", &[], "").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    assert!(headers.iter().any(|(k, _)| k == "request-ref"));
    let (status, headers, _) =
        call(&server.base, "DELETE", "/authentication_factors", &[], "").await;
    assert_eq!(status, 405);
    assert!(headers.contains(&("allow".into(), "GET".into())));
    // The sandbox programme's own limit from the file.
    let sbx = mint("sbx", "u1", phone, false);
    let auth = format!("Bearer {sbx}");
    let h = [("api-key", SANDBOX_KEY), ("authorization", auth.as_str())];
    for expected in [204, 204, 429] {
        assert_eq!(
            call(
                &server.base,
                "POST",
                "/authentication_factors/otp/SMS",
                &h,
                ""
            )
            .await
            .0,
            expected
        );
    }
    assert_log_clean(
        &server,
        &[LIVE_KEY, SANDBOX_KEY, &token, &sbx, &code, "447700900777"],
    );
    let _ = std::fs::remove_dir_all(&server.dir);
}

#[tokio::test]
async fn on_dynamodb_and_sns_state_survives_a_restart() {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT")
        .expect("TEST_AWS_ENDPOINT is not set: run scripts/test, which starts a local DynamoDB/SNS-compatible server");
    let dir = scratch();
    let mut env = common_env(&dir);
    let table = format!("serve-{}", std::process::id());
    env.extend([
        ("DYNAMODB_ENDPOINT", endpoint.clone()),
        ("SNS_ENDPOINT", endpoint.clone()),
        ("TABLE_NAME", table),
    ]);
    let phone = format!("+4477{:08}", std::process::id());
    let token = mint("live", "u1", &phone, false);
    let auth = format!("Bearer {token}");
    let h = [("api-key", LIVE_KEY), ("authorization", auth.as_str())];
    let code;
    {
        let server = start(&env);
        assert!(
            server.stdout[0].contains("DynamoDB table"),
            "{:?}",
            server.stdout
        );
        assert_eq!(
            call(
                &server.base,
                "POST",
                "/authentication_factors/otp/SMS",
                &h,
                ""
            )
            .await
            .0,
            204
        );
        let data = http_get(&format!("{endpoint}/moto-api/data.json")).await;
        let data: Value = serde_json::from_str(&data).unwrap();
        let sms = data["sns"]["SMS"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s["phone_number"] == phone.as_str())
            .unwrap()
            .clone();
        code = code_in(sms["message"].as_str().unwrap());
        let body = format!(r#"{{"verificationCode":"{code}"}}"#);
        assert_eq!(
            call(
                &server.base,
                "POST",
                "/authentication_factors/otp/SMS/verify",
                &h,
                &body
            )
            .await
            .0,
            204
        );
        assert_log_clean(
            &server,
            &[LIVE_KEY, &token, &code, phone.trim_start_matches('+')],
        );
    }
    let server = start(&env);
    let (status, _, body) = call(&server.base, "GET", "/authentication_factors", &h, "").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"factors": [{"type": "OTP", "channel": "SMS", "status": "ACTIVE"}]})
        )
    );
    // Push in the sandbox programme: enrol, accept, unlink with step-up.
    let sbx = mint("sbx", "u1", &phone, false);
    let up = mint("sbx", "u1", &phone, true);
    let (a, b) = (format!("Bearer {sbx}"), format!("Bearer {up}"));
    let h = [("api-key", SANDBOX_KEY), ("authorization", a.as_str())];
    let h_up = [("api-key", SANDBOX_KEY), ("authorization", b.as_str())];
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/authentication_factors/push/AUTHY",
            &h,
            ""
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &server.base,
            "POST",
            "/simulate/authentication_factors/push/AUTHY/accept",
            &h,
            ""
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &server.base,
            "DELETE",
            "/authentication_factors/push/AUTHY",
            &h,
            ""
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &server.base,
            "DELETE",
            "/authentication_factors/push/AUTHY",
            &h_up,
            ""
        )
        .await
        .0,
        204
    );
    let (_, _, body) = call(&server.base, "GET", "/authentication_factors", &h, "").await;
    assert_eq!(body, json!({"factors": []}));
    assert_log_clean(
        &server,
        &[
            LIVE_KEY,
            SANDBOX_KEY,
            &token,
            &sbx,
            &up,
            phone.trim_start_matches('+'),
        ],
    );
}

async fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Pointed at a real AWS table, the local server refuses the development secrets and the
/// public demo programme: it says why and exits non-zero, before any AWS call.
#[test]
fn pointed_at_a_real_aws_table_it_refuses_to_be_production() {
    let run = |envs: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-server"));
        command
            .env("PORT", "0")
            .env("TABLE_NAME", "factors-prod")
            .env_remove("PROGRAMMES_FILE")
            .env_remove("DYNAMODB_ENDPOINT")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
            .env_remove("JWT_HS256_SECRET")
            .env_remove("OTP_HMAC_SECRET");
        for (k, v) in envs {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("JWT_HS256_SECRET and OTP_HMAC_SECRET"),
        "{stderr}"
    );
    assert!(!stdout.contains("demo"), "nothing seeded, no demo printed");
    let (code, _, stderr) = run(&[
        ("JWT_HS256_SECRET", SECRET),
        ("OTP_HMAC_SECRET", "a-deployment-s-own-otp-key-0123456789"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("demo") && stderr.contains("PROGRAMMES_FILE"),
        "{stderr}"
    );
}

/// The banner links the docs; the server serves the spec as written, as JSON, and a page
/// that renders it from this server alone (issue 25, item 5). `scripts/test-docs` renders the
/// page in a real headless browser.
#[tokio::test]
async fn the_banner_links_the_docs_and_the_server_serves_the_spec() {
    let dir = scratch();
    let server = start(&common_env(&dir));
    let docs = format!("{}/docs", server.base);
    assert!(
        server.stdout.iter().any(|l| l.contains(&docs)),
        "{:?}",
        server.stdout
    );
    let yaml = http_get(&format!("{}/openapi.yaml", server.base)).await;
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    assert_eq!(yaml, on_disk, "the spec as written");
    let json: Value =
        serde_json::from_str(&http_get(&format!("{}/openapi.json", server.base)).await).unwrap();
    assert_eq!(json["info"]["title"], "Additional Factors API");
    assert!(json["paths"]["/challenges/otp/{channel}"]["post"].is_object());
    let page = http_get(&docs).await;
    assert!(page.contains("<title>Additional Factors API</title>"));
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    // Only GET: the docs are not an API route.
    let (status, headers, _) = call(&server.base, "POST", "/docs", &[], "").await;
    assert_eq!(status, 405);
    assert!(headers.iter().any(|(k, v)| k == "allow" && v == "GET"));
}
