//! `factors-admin`: the operator's tool.
//!
//! ```text
//! factors-admin create-table
//! factors-admin create-programme --id ID [--name NAME] [--sandbox] [--settings FILE.json] [--api-key KEY]
//!                                 [--countries 44,33 | --inherit-countries]   (live programmes: one of them)
//! factors-admin list-programmes
//! factors-admin update-programme --id ID [--name NAME] [--settings FILE.json] [--countries 44,33 | --inherit-countries]
//! factors-admin disable-programme --id ID      (and enable-programme)
//! factors-admin add-api-key --programme ID     (a second key, for rotation; printed once)
//! factors-admin list-api-keys --programme ID   (ids and creation times, never a key)
//! factors-admin revoke-api-key --programme ID --key-id KEY_ID
//! factors-admin register-legacy-programmes    (once, for tables written before the registry)
//! factors-admin add-biometric --programme ID --user SUB
//! factors-admin mint-token --programme ID --user SUB [--phone +44...] [--mfa] [--ttl SECONDS]
//! ```
//!
//! Store commands work on the DynamoDB table named by `TABLE_NAME` (default
//! `additional-factors`), at `DYNAMODB_ENDPOINT` when set (a local server) or in the AWS
//! account of the environment's credentials. A new api key is printed once and only its
//! SHA-256 is stored; each key has a short id to list and revoke it by. Programmes and keys
//! are listed from the table's registry partition: no command scans the table (but the
//! one-time `register-legacy-programmes`). A revoked key or a changed setting reaches every
//! warm function within its programme cache, 60 s. `mint-token` signs with
//! `JWT_HS256_SECRET` for local and sandbox use.

use additional_factors::store::Seeding;
use std::collections::HashMap;

use additional_factors::{
    auth::mint_hs256,
    aws::sdk_config,
    clock::{Clock, SystemClock},
    config::{Config, Mode},
    domain::{
        channel::Channel,
        crypto::{api_key_hash, hex},
        factor::{FactorRecord, FactorStatus},
        programme::{Countries, Programme},
        random::{RandomSource, SystemRandom},
    },
    store::{
        dynamodb::{operator::ApiKeyRecord, settings, DynamoStore},
        UserKey,
    },
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: factors-admin <create-table | create-programme --id ID [--name NAME] [--sandbox] [--settings FILE] [--api-key KEY] \
[--countries 44,33 | --inherit-countries] | \
list-programmes | update-programme --id ID [--name NAME] [--settings FILE] [--countries 44,33 | --inherit-countries] | \
disable-programme --id ID | enable-programme --id ID | add-api-key --programme ID | list-api-keys --programme ID | \
revoke-api-key --programme ID --key-id KEY_ID | register-legacy-programmes | add-biometric --programme ID --user SUB | \
mint-token --programme ID --user SUB [--phone +44...] [--mfa] [--ttl SECONDS]>";

/// `--flag value` and bare `--flag` arguments.
struct Args {
    command: String,
    options: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Self, BoxError> {
        let mut args = std::env::args().skip(1);
        let command = args.next().ok_or(USAGE)?;
        let mut options = HashMap::new();
        let rest: Vec<String> = args.collect();
        let mut i = 0;
        while let Some(arg) = rest.get(i) {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}\n{USAGE}"))?;
            match rest.get(i + 1).filter(|v| !v.starts_with("--")) {
                Some(value) => {
                    options.insert(name.to_owned(), value.clone());
                    i += 2;
                }
                None => {
                    options.insert(name.to_owned(), String::new());
                    i += 1;
                }
            }
        }
        Ok(Self { command, options })
    }

    fn required(&self, name: &str) -> Result<&str, BoxError> {
        self.options
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("--{name} is required\n{USAGE}").into())
    }

    fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }
}

async fn store(config: &Config) -> DynamoStore {
    let table = config
        .table_name
        .clone()
        .unwrap_or_else(|| "additional-factors".into());
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

async fn set_disabled(store: &DynamoStore, id: &str, disabled: bool) -> Result<(), BoxError> {
    let mut programme = registered(store, id).await?;
    programme.disabled = disabled;
    store.update_programme(&programme).await?;
    println!(
        "programme {id} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

async fn registered(store: &DynamoStore, id: &str) -> Result<Programme, BoxError> {
    store.registered_programme(id).await?.ok_or_else(|| {
        format!("no programme {id:?} (created before the registry? run register-legacy-programmes once)").into()
    })
}

/// A new api key (32 random bytes, hex) and its record: a short random id, the key's hash.
fn new_api_key(chosen: Option<&String>) -> Result<(String, ApiKeyRecord), BoxError> {
    let random = SystemRandom::default();
    // --api-key: a chosen key, for development only (the events/ files use one).
    let api_key = match chosen.filter(|k| !k.is_empty()) {
        Some(chosen) => chosen.clone(),
        None => {
            let mut key = [0u8; 32];
            random.fill(&mut key)?;
            hex(&key)
        }
    };
    let mut id = [0u8; 4];
    random.fill(&mut id)?;
    let record = ApiKeyRecord {
        key_id: format!("k{}", hex(&id)),
        api_key_hash: api_key_hash(&api_key),
        created_at: SystemClock.now(),
    };
    Ok((api_key, record))
}

/// The deployment's default allow-list as this shell knows it (the stack's
/// `DefaultAllowedCountryCodes` parameter, when `DEFAULT_ALLOWED_COUNTRY_CODES` mirrors it).
fn deployment_countries() -> String {
    std::env::var("DEFAULT_ALLOWED_COUNTRY_CODES")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map_or_else(
            || "the stack's DefaultAllowedCountryCodes parameter (set DEFAULT_ALLOWED_COUNTRY_CODES here to see it)".to_owned(),
            |v| format!("{v:?}"),
        )
}

/// A live programme sends SMS to the countries the operator chose: `--countries 44,33`
/// (or `*`), the settings file's `allowedCountryCodes`, or `--inherit-countries` (the
/// deployment's default). A sandbox sends nothing and needs no choice.
fn choose_countries(args: &Args, programme: &mut Programme) -> Result<(), BoxError> {
    if let Some(list) = args.options.get("countries") {
        programme.allowed_country_codes = match Countries::parse(list)? {
            Countries::All => vec!["*".to_owned()],
            Countries::Only(codes) if codes.is_empty() => {
                return Err("--countries needs calling codes (44,33) or *".into())
            }
            Countries::Only(codes) => codes,
        };
        println!("countries: {}", programme.allowed_country_codes.join(","));
        return Ok(());
    }
    if !programme.allowed_country_codes.is_empty() || programme.sandbox {
        return Ok(());
    }
    if args.flag("inherit-countries") {
        println!(
            "countries: the deployment's default, {}",
            deployment_countries()
        );
        return Ok(());
    }
    Err(format!(
        "a live programme sends SMS only to the countries it allows: pass --countries 44,33 (or *), \
         or --inherit-countries for the deployment's default, {}",
        deployment_countries()
    )
    .into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse()?;
    let config = Config::from_env(Mode::Local)?;
    match args.command.as_str() {
        "create-table" => {
            let created = store(&config).await.create_table_if_missing().await?;
            println!(
                "{}",
                if created {
                    "table created"
                } else {
                    "table already exists"
                }
            );
        }
        "create-programme" => {
            let mut programme: Programme = match args.options.get("settings") {
                Some(path) => settings::parse(&std::fs::read_to_string(path)?)?,
                None => Programme::new(args.required("id")?, false),
            };
            if let Some(id) = args.options.get("id") {
                programme.id = id.clone();
            }
            if let Some(name) = args.options.get("name") {
                programme.name = name.clone();
            }
            programme.sandbox |= args.flag("sandbox");
            choose_countries(&args, &mut programme)?;
            programme.validate()?;
            let (api_key, record) = new_api_key(args.options.get("api-key"))?;
            store(&config)
                .await
                .create_programme(&programme, &record)
                .await?;
            println!(
                "programme {} created (sandbox: {})",
                programme.id, programme.sandbox
            );
            println!("api key (shown once, only its SHA-256 is stored): {api_key}");
            println!("key id (to list or revoke it): {}", record.key_id);
        }
        "list-programmes" => {
            for p in store(&config).await.registered_programmes().await? {
                println!(
                    "{}\tname={:?}\tsandbox={}\tdisabled={}\tchannels={:?}",
                    p.id, p.name, p.sandbox, p.disabled, p.enabled_channels
                );
            }
        }
        "update-programme" => {
            let store = store(&config).await;
            let id = args.required("id")?;
            let mut programme = registered(&store, id).await?;
            if let Some(path) = args.options.get("settings") {
                programme = settings::parse(&std::fs::read_to_string(path)?)?;
                programme.id = id.to_owned();
            }
            if let Some(name) = args.options.get("name") {
                programme.name = name.clone();
            }
            if args.flag("inherit-countries") {
                programme.allowed_country_codes.clear();
            }
            choose_countries(&args, &mut programme)?;
            programme.validate()?;
            store.update_programme(&programme).await?;
            println!("programme {id} updated (every api key; functions see it within 60 s)");
        }
        "add-api-key" => {
            let store = store(&config).await;
            let id = args.required("programme")?;
            let (api_key, record) = new_api_key(args.options.get("api-key"))?;
            store.add_api_key(id, &record).await?;
            println!("api key added to {id} (shown once, only its SHA-256 is stored): {api_key}");
            println!("key id (to list or revoke it): {}", record.key_id);
        }
        "list-api-keys" => {
            let id = args.required("programme")?;
            for key in store(&config).await.api_keys(id).await? {
                println!("{}\tcreated_at={}", key.key_id, key.created_at);
            }
        }
        "revoke-api-key" => {
            let id = args.required("programme")?;
            let key_id = args.required("key-id")?;
            store(&config).await.revoke_api_key(id, key_id).await?;
            println!("api key {key_id} of {id} revoked (refused everywhere within 60 s)");
        }
        "register-legacy-programmes" => {
            let added = store(&config)
                .await
                .register_legacy_programmes(SystemClock.now())
                .await?;
            println!(
                "registered: {}",
                if added.is_empty() {
                    "none".to_owned()
                } else {
                    added.join(", ")
                }
            );
        }
        "disable-programme" => {
            set_disabled(&store(&config).await, args.required("id")?, true).await?
        }
        "enable-programme" => {
            set_disabled(&store(&config).await, args.required("id")?, false).await?
        }
        "add-biometric" => {
            let user = UserKey {
                programme_id: args.required("programme")?.to_owned(),
                credential_id: args.required("user")?.to_owned(),
            };
            let factor = FactorRecord {
                channel: Channel::Biometric,
                status: FactorStatus::Active,
                phone_hash: None,
                provider_ref: None,
                pending_request: None,
                verified_by: None,
                updated_at: SystemClock.now(),
                device: None,
            };
            store(&config).await.put_factor(&user, &factor).await?;
            println!(
                "BIOMETRIC factor ACTIVE for {} in {}",
                user.credential_id, user.programme_id
            );
        }
        "mint-token" => {
            let secret = config
                .tokens
                .hs256_secret
                .clone()
                .ok_or("JWT_HS256_SECRET is not set")?;
            let now = SystemClock.now();
            let ttl: i64 = args.options.get("ttl").map_or(Ok(3_600), |t| t.parse())?;
            let mut claims = serde_json::json!({
                "sub": args.required("user")?, "programme_id": args.required("programme")?,
                "iss": config.tokens.issuer, "aud": config.tokens.audience,
                "iat": now, "exp": now + ttl,
            });
            if let Some(phone) = args.options.get("phone") {
                claims["phone_number"] = phone.clone().into();
            }
            if args.flag("mfa") {
                claims["amr"] = serde_json::json!(["pwd", "mfa"]);
            }
            println!("{}", mint_hs256(secret.as_bytes(), &claims)?);
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
