//! The local DynamoDB/SNS-compatible server the tests talk to over HTTP (`TEST_AWS_ENDPOINT`,
//! started by `scripts/test`), behind a proxy that serialises its writes per table.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The SDK configuration with long timeouts, for tests that load the emulator.
pub fn patient(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build();
    config.into_builder().timeout_config(timeouts).build()
}

/// The local AWS-compatible server (moto) that `scripts/test` starts, reached through a
/// proxy that hands it one request at a time.
///
/// moto handles concurrent requests on several threads without a lock around an item's
/// condition check and update, so two conditional updates can both pass (seen: 6 attempts
/// counted against a limit of 5 under 1,000 parallel requests). DynamoDB applies each write
/// atomically; serialising moto's requests gives it the same guarantee, so the concurrency
/// tests test this code, not the emulator's race.
pub fn aws_endpoint() -> String {
    static SERIALIZED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERIALIZED
        .get_or_init(|| {
            let upstream = std::env::var("TEST_AWS_ENDPOINT").expect(
                "TEST_AWS_ENDPOINT is not set: run scripts/test, which starts a local DynamoDB/SNS-compatible server",
            );
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    serialize_requests(listener, upstream).await
                });
            });
            url
        })
        .clone()
}

async fn serialize_requests(listener: tokio::net::TcpListener, upstream: String) {
    use tokio::io::AsyncWriteExt;
    let upstream = upstream.trim_start_matches("http://").to_owned();
    // One lock per table (atomicity is per item; tests on other tables run in parallel).
    type Turns = Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>;
    let turns: Arc<Turns> = Arc::new(Mutex::new(std::collections::HashMap::new()));
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let (upstream, turns) = (upstream.clone(), turns.clone());
        tokio::spawn(async move {
            while let Some(request) = read_http_message(&mut client).await {
                let table = String::from_utf8_lossy(&request)
                    .split("\"TableName\":\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .to_owned();
                let turn = turns.lock().unwrap().entry(table).or_default().clone();
                let answer = {
                    let _turn = turn.lock().await;
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if server.write_all(&request).await.is_err() {
                        return;
                    }
                    read_http_message(&mut server).await
                };
                let Some(answer) = answer else { return };
                if client.write_all(&answer).await.is_err() {
                    return;
                }
                // The server closes after each answer (moto does): so does the proxy, or a
                // client reading to the end of the stream would wait forever.
                let head_end = answer
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(answer.len());
                if String::from_utf8_lossy(&answer[..head_end])
                    .to_ascii_lowercase()
                    .contains("connection: close")
                {
                    return;
                }
            }
        });
    }
}

/// One HTTP/1.1 message (head and Content-Length body), or None at the end of the stream.
/// Scans each byte once: emulator answers can be megabytes.
pub async fn read_http_message(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut scanned: usize = 0;
    let mut expected: Option<usize> = None;
    loop {
        if expected.is_none() {
            let from = scanned.saturating_sub(3);
            if let Some(at) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                let end = from + at;
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                expected = Some(end + 4 + length);
            }
            scanned = buf.len();
        }
        if let Some(total) = expected {
            if buf.len() >= total {
                buf.truncate(total);
                return Some(buf);
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A plain HTTP/1.0 GET (for the emulator's own API).
/// The emulator's record of everything (`/moto-api/data.json`). It serialises its state while
/// other tests change it and then, now and then, answers an HTML 500: asked again, it answers.
pub async fn moto_data(endpoint: &str) -> Value {
    let url = format!("{endpoint}/moto-api/data.json");
    let mut last = String::new();
    for _ in 0..20 {
        last = http_get(&url).await;
        if let Ok(data) = serde_json::from_str::<Value>(&last) {
            return data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the emulator's data.json is not JSON: {}",
        last.chars().take(300).collect::<String>()
    )
}

pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
