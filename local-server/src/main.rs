//! The local server: every route of the API on one port, on the embedded default (an
//! in-memory store, a console SMS sender and a fake push provider), no AWS account needed.
//!
//! It mounts the very handlers the Lambda functions run, routing by method and path as API
//! Gateway does. Configuration: see the README (`PORT`, `PROGRAMMES_FILE`, `SMS_OUTBOX`,
//! `JWT_HS256_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE`, `OTP_HMAC_SECRET`).

mod docs;

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use additional_factors::{
    app::App,
    auth::mint_hs256,
    config::{read_programmes_file, Config, Mode, LOCAL_JWT_SECRET, LOCAL_OTP_SECRET},
    domain::{
        crypto::api_key_hash,
        programme::Programme,
        random::{RandomSource, SystemRandom},
    },
    events::{EventPublisher, LogEvents},
    handlers::reply::ApiError,
    http::{dispatch, reject_unrouted, router::match_route},
    push::{fake::FakePushProvider, PushProvider},
    sms::{console::ConsoleSmsSender, sns::SnsSmsSender, SmsSender},
    store::{dynamodb::DynamoStore, memory::MemoryStore, Store},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use lambda_http::Body;

const DEMO_API_KEY: &str = "demo-sandbox-api-key";
const DEMO_PHONE: &str = "+447700900123";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    additional_factors::logging::init();
    let config = Config::from_env(Mode::Local)?;
    if let Err(refusal) = refuse_production(&config) {
        eprintln!("local-server: {refusal}");
        std::process::exit(2);
    }
    let port: u16 = std::env::var("PORT").ok().map_or(Ok(3000), |p| p.parse())?;
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let random: Arc<dyn RandomSource> = Arc::new(SystemRandom::default());
    let outbox = std::env::var_os("SMS_OUTBOX").map(PathBuf::from);
    let (store, store_name) = build_store(&config).await?;
    let (sms, sms_name): (Arc<dyn SmsSender>, String) = match &config.sns_endpoint {
        Some(endpoint) => {
            let sdk = additional_factors::aws::sdk_config(Some(endpoint)).await;
            (
                Arc::new(SnsSmsSender::new(aws_sdk_sns::Client::new(&sdk))),
                format!("SNS at {endpoint}"),
            )
        }
        None => (
            Arc::new(ConsoleSmsSender::new(outbox.clone())),
            "console SMS".into(),
        ),
    };
    // Authy when AUTHY_API_KEY is set (e.g. a local fake of it), else the fake provider.
    let (push, callback, push_name): (Arc<dyn PushProvider>, _, &str) = match &config.authy {
        Some(_) => {
            let (push, callback) = additional_factors::config::push_provider(&config)?;
            (push, callback, "Authy")
        }
        None => (
            Arc::new(FakePushProvider::new()),
            None,
            "fake push provider",
        ),
    };
    let events: Arc<dyn EventPublisher> = match &config.events_topic_arn {
        Some(_) => {
            let sdk = additional_factors::aws::sdk_config(config.sns_endpoint.as_deref()).await;
            let client = aws_sdk_sns::Client::new(&sdk);
            additional_factors::config::event_publisher(
                &config,
                &additional_factors::aws::lazy(move || client),
            )
        }
        None => Arc::new(LogEvents),
    };
    let (device_push, device_push_name) = device_push(&config).await?;
    let app = App::builder(store.clone())
        .sms(sms)
        .push(push)
        .device_push(device_push)
        .callback_key(callback)
        .events(events)
        .random(random)
        .tokens(config.tokens.verifier()?)
        .otp_secret(config.otp_secret.as_bytes())
        .policy(config.policy.clone())
        .signer(
            proof_signer(&config, &config.proof.kms, &config.proof.key_file, "proof").await?,
            config.proof.issuer.clone(),
        )
        .sandbox_signer(
            proof_signer(
                &config,
                &config.proof.sandbox_kms,
                &config.proof.sandbox_key_file,
                "sandbox-proof",
            )
            .await?,
        )
        .build()?;
    let app = Arc::new(app);

    let programmes_file = std::env::var_os("PROGRAMMES_FILE").map(PathBuf::from);
    let programmes = match &programmes_file {
        Some(path) => read_programmes_file(path)?,
        None => {
            let mut demo = Programme::new("demo", true);
            demo.name = "Demo".into();
            vec![(DEMO_API_KEY.to_owned(), demo)]
        }
    };
    for (api_key, programme) in &programmes {
        store
            .put_programme(&api_key_hash(api_key), programme)
            .await?;
    }

    let addr: SocketAddr = format!("{host}:{port}").parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("Additional Factors API on {base} ({store_name}, {sms_name}, {push_name}, {device_push_name})");
    println!("API docs: {base}/docs (the spec: {base}/openapi.yaml)");
    match (&outbox, &config.sns_endpoint) {
        (_, Some(_)) => {}
        (Some(path), None) => println!("SMS texts are appended to {}", path.display()),
        (None, None) => {
            println!("SMS texts are not kept (set SMS_OUTBOX=<file> to read the codes of live programmes)")
        }
    }
    if programmes_file.is_some() {
        let ids: Vec<&str> = programmes.iter().map(|(_, p)| p.id.as_str()).collect();
        println!("Programmes loaded from PROGRAMMES_FILE: {}", ids.join(", "));
    } else {
        print_demo(&config, &base, app.clock.now())?;
    }

    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(conn) => conn,
                    Err(error) => { tracing::warn!(%error, "accept failed"); continue; }
                };
                let app = app.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(serve(&app, request).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = &mut shutdown => {
                println!("stopped");
                return Ok(());
            }
        }
    }
}

/// BIOMETRIC devices' pushes: through SNS at `SNS_ENDPOINT` when set (creating the three
/// platform applications there when the configuration names none, as the table is created),
/// else to the `PUSH_OUTBOX` file (one JSON line per push) and the console.
async fn device_push(
    config: &Config,
) -> Result<
    (
        Arc<dyn additional_factors::push::device::DevicePush>,
        String,
    ),
    BoxError,
> {
    use additional_factors::domain::device::Platform;
    let Some(endpoint) = &config.sns_endpoint else {
        let outbox = additional_factors::push::device_outbox::OutboxDevicePush::new(
            config.push_outbox.clone(),
        );
        return Ok((Arc::new(outbox), "device pushes to the outbox".into()));
    };
    let sdk = additional_factors::aws::sdk_config(Some(endpoint)).await;
    let client = aws_sdk_sns::Client::new(&sdk);
    let mut applications = config.platform_applications.clone();
    for platform in Platform::ALL {
        if applications.contains_key(&platform) {
            continue;
        }
        let created = client
            .create_platform_application()
            .name(format!(
                "additional-factors-{}",
                platform.as_str().to_lowercase()
            ))
            .platform(platform.sns_name())
            .attributes("PlatformCredential", "local-credential")
            .attributes("PlatformPrincipal", "local-principal")
            .send()
            .await?;
        if let Some(arn) = created.platform_application_arn {
            applications.insert(platform, arn);
        }
    }
    let lazy = additional_factors::aws::lazy(move || client);
    Ok((
        Arc::new(additional_factors::push::device_sns::SnsDevicePush::new(
            lazy,
            applications,
        )),
        format!("device pushes through SNS at {endpoint}"),
    ))
}

/// A proof key (live, or the sandbox programmes' own): the KMS key of `PROOF_KMS_KEY_ID` (or
/// `SANDBOX_PROOF_KMS_KEY_ID`) when set (at `KMS_ENDPOINT`, e.g. a local KMS), else a
/// development key the server creates once and keeps in `PROOF_KEY_FILE` (or
/// `SANDBOX_PROOF_KEY_FILE`; default: `additional-factors-<name>-key.p8` in the system's
/// temporary directory).
async fn proof_signer(
    config: &Config,
    keys: &additional_factors::config::KmsKeys,
    key_file: &Option<PathBuf>,
    name: &str,
) -> Result<Arc<dyn additional_factors::proof::ProofSigner>, BoxError> {
    if let Some(key_id) = &keys.key_id {
        let sdk = additional_factors::aws::sdk_config(config.proof.kms_endpoint.as_deref()).await;
        return Ok(Arc::new(additional_factors::proof::kms::KmsSigner::new(
            aws_sdk_kms::Client::new(&sdk),
            key_id.clone(),
            keys.previous_key_id.clone(),
        )));
    }
    let path = key_file
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("additional-factors-{name}-key.p8")));
    Ok(Arc::new(
        additional_factors::proof::local::LocalSigner::load_or_create(&path)?,
    ))
}

/// Pointed at a real AWS table (a table name and no local endpoint), the local server is no
/// longer a toy: it refuses the development secrets (anyone can mint tokens with the
/// published one) and will not seed the demo programme (its api key is in the README).
fn refuse_production(config: &Config) -> Result<(), String> {
    if config.table_name.is_none() || config.dynamodb_endpoint.is_some() {
        return Ok(());
    }
    let mut development = Vec::new();
    if config.tokens.hs256_secret.as_deref() == Some(LOCAL_JWT_SECRET) {
        development.push("JWT_HS256_SECRET");
    }
    if config.otp_secret == LOCAL_OTP_SECRET {
        development.push("OTP_HMAC_SECRET");
    }
    if !development.is_empty() {
        return Err(format!(
            "TABLE_NAME names a table in AWS (no DYNAMODB_ENDPOINT), so the development secrets \
             are refused: set {} to the deployment's own",
            development.join(" and ")
        ));
    }
    if std::env::var_os("PROGRAMMES_FILE").is_none() {
        return Err(
            "TABLE_NAME names a table in AWS (no DYNAMODB_ENDPOINT): the public demo \
             programme is not seeded there; set PROGRAMMES_FILE (a JSON array, [] when the \
             table's programmes were created with factors-admin)"
                .into(),
        );
    }
    Ok(())
}

/// The in-memory store, or DynamoDB when `TABLE_NAME` or `DYNAMODB_ENDPOINT` is set. At a
/// local endpoint the table is created when missing.
async fn build_store(config: &Config) -> Result<(Arc<dyn Store>, String), BoxError> {
    if config.table_name.is_none() && config.dynamodb_endpoint.is_none() {
        return Ok((Arc::new(MemoryStore::new()), "in-memory store".into()));
    }
    let table = config
        .table_name
        .clone()
        .unwrap_or_else(|| "additional-factors".into());
    let sdk = additional_factors::aws::sdk_config(config.dynamodb_endpoint.as_deref()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    if config.dynamodb_endpoint.is_some() && store.create_table_if_missing().await? {
        println!("Created DynamoDB table {table}");
    }
    let endpoint = config.dynamodb_endpoint.as_deref().unwrap_or("AWS");
    Ok((
        Arc::new(store),
        format!("DynamoDB table {table} at {endpoint}"),
    ))
}

/// Prints the demo programme's api key, a token for a demo user and a first request.
fn print_demo(config: &Config, base: &str, now: i64) -> Result<(), BoxError> {
    let secret = config.tokens.hs256_secret.clone().unwrap_or_default();
    let claims = serde_json::json!({
        "sub": "demo-user", "programme_id": "demo", "phone_number": DEMO_PHONE,
        "iss": config.tokens.issuer, "aud": config.tokens.audience,
        "iat": now, "exp": now + 24 * 3600,
    });
    let token = mint_hs256(secret.as_bytes(), &claims)?;
    println!("Demo sandbox programme \"demo\": no SMS is sent and the code is always 123456.");
    println!(
        "  token issuer {:?}, audience {:?}",
        config.tokens.issuer, config.tokens.audience
    );
    println!();
    println!("export API_KEY='{DEMO_API_KEY}'");
    println!("export TOKEN='{token}'   # user demo-user, phone {DEMO_PHONE}, valid 24 h");
    println!("curl -i -X POST {base}/authentication_factors/otp/SMS -H \"api-key: $API_KEY\" -H \"Authorization: Bearer $TOKEN\"");
    println!();
    Ok(())
}

/// Turns a hyper request into the `lambda_http::Request` API Gateway would hand the
/// function (path parameters included), and the function's response back.
async fn serve(app: &App, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    if let Some(page) = docs::answer(request.method(), request.uri().path()) {
        return page;
    }
    let (parts, body) = request.into_parts();
    let route = match match_route(parts.method.as_str(), parts.uri.path()) {
        Ok(matched) => matched.route,
        Err(error) => return to_hyper(reject_unrouted(app, &error)),
    };
    // Read no further than the route's cap: a larger body is a 413, never buffered whole.
    let bytes = match Limited::new(body, route.max_body_bytes()).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return to_hyper(reject_unrouted(app, &ApiError::PayloadTooLarge))
        }
        Err(_) => {
            return to_hyper(reject_unrouted(
                app,
                &ApiError::MalformedBody("The request body is unreadable."),
            ))
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Binary(bytes.to_vec())
    };
    to_hyper(dispatch(app, lambda_http::Request::from_parts(parts, body)).await)
}

fn to_hyper(response: lambda_http::Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
