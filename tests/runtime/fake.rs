#![allow(dead_code)] // each test binary uses what it needs
//! A fake Lambda Runtime API: serves the events it is given, one per `next`, and hands back
//! each response a function posts. Shared by the test binaries that run a function's own loop.

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// Reads one HTTP/1.1 request (head and `Content-Length` body).
pub async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = head.lines().next().unwrap_or_default().to_owned();
            return Some((line, buf[end + 4..end + 4 + length].to_vec()));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serves `events` one per `next`, in order (then holds `next` open), and sends each
/// posted response, as JSON, to the returned channel.
pub async fn fake_runtime_api(events: Vec<Vec<u8>>) -> (String, mpsc::UnboundedReceiver<Value>) {
    let (feed, queue) = mpsc::unbounded_channel();
    for event in events {
        feed.send(event).unwrap();
    }
    // Dropped: once the given events are served, `next` is held open.
    drop(feed);
    fed_runtime_api(queue).await
}

/// Serves each event sent to `events` on the next `next` (holding `next` open until one
/// comes), and sends each posted response, as JSON, to the returned channel.
pub async fn fed_runtime_api(
    events: mpsc::UnboundedReceiver<Vec<u8>>,
) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (responses, received) = mpsc::unbounded_channel();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new((0usize, events)));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (queue, responses) = (queue.clone(), responses.clone());
            tokio::spawn(async move {
                while let Some((line, body)) = read_request(&mut stream).await {
                    if line.contains("/runtime/invocation/next") {
                        let (n, event) = {
                            let mut queue = queue.lock().await;
                            let Some(event) = queue.1.recv().await else {
                                drop(queue);
                                std::future::pending::<()>().await;
                                return;
                            };
                            queue.0 += 1;
                            (queue.0 - 1, event)
                        };
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: request-{n}\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:000000000000:function:f\r\nContent-Length: {}\r\n\r\n",
                            event.len()
                        );
                        stream.write_all(head.as_bytes()).await.unwrap();
                        stream.write_all(&event).await.unwrap();
                    } else {
                        if line.contains("/response") {
                            let _ = responses.send(serde_json::from_slice(&body).unwrap());
                        } else {
                            let _ = responses.send(json!({ "unexpected": line }));
                        }
                        stream
                            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    (address, received)
}
