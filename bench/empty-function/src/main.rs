//! The cold-start floor: `lambda_http` answering 200 to everything, nothing else.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::builder().status(200).body(Body::Empty)?)
    }))
    .await
}
