//! The second cold-start floor, F1: `lambda_http` answering 200 to everything, after one
//! DynamoDB `GetItem` over TLS at init (the SDK's default configuration, from the environment:
//! what any function that reads a table pays before its first request). Our functions' init
//! CPU is compared with this one's (BENCHMARKS.md).

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut config = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT") {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_dynamodb::Client::new(&config.load().await);
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "floor".into());
    // Its answer does not matter (the floor measures the call, not what it reads).
    let _ = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("FLOOR".into()))
        .key("sk", AttributeValue::S("FLOOR".into()))
        .send()
        .await;
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::builder().status(200).body(Body::Empty)?)
    }))
    .await
}
