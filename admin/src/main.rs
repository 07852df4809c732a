//! `factors-admin`: the operator's tool. `factors-admin --help` lists the commands,
//! `factors-admin <command> --help` each one's flags; an unknown or misspelled flag exits 2.
//!
//! Store commands work on the DynamoDB table named by `TABLE_NAME` (default
//! `additional-factors`), at `DYNAMODB_ENDPOINT` when set (a local server) or in the AWS
//! account of the environment's credentials. A new api key is printed once and only its
//! SHA-256 is stored; each key has a short id to list and revoke it by. Programmes and keys
//! are listed from the table's registry partition: no command scans the table (but the
//! one-time `register-legacy-programmes`). A revoked key or a changed setting reaches every
//! warm function within its programme cache, 60 s. `mint-token` signs with
//! `JWT_HS256_SECRET` for local and sandbox use.
//!
//! Every command that changes something leaves an audit record — who (the caller's AWS
//! identity, from STS), what, on what, when — listed by `list-audit`. Destructive commands
//! (`disable-programme`, `revoke-api-key`, `erase-user`) ask for the target's name on a
//! terminal, or need `--yes`. `--json` prints one JSON object instead of lines.

use std::io::IsTerminal;

use additional_factors::{
    auth::mint_hs256,
    aws::sdk_config,
    clock::{Clock, SystemClock},
    config::{Config, Mode},
    domain::{
        channel::Channel,
        crypto::api_key_hash,
        factor::{FactorRecord, FactorStatus},
        hex::hex,
        programme::{Countries, Programme},
        random::{RandomSource, SystemRandom},
    },
    store::{
        dynamodb::{
            operator::ApiKeyRecord,
            operator_records::{attribute_json, AuditRecord},
            schema, settings, DynamoStore,
        },
        Seeding, UserKey,
    },
};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "factors-admin",
    version,
    about = "The Additional Factors API's operator tool: the table, programmes, api keys, the audit trail, one user's data."
)]
struct Cli {
    /// Print the result as one JSON object instead of lines.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (on-demand, TTL on `ttl`) and wait until it is ACTIVE.
    CreateTable,
    /// Create a programme and its first api key (printed once).
    CreateProgramme {
        /// The programme's id (or the settings file's `id`).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// A sandbox programme: fixed code, no SMS, simulators.
        #[arg(long)]
        sandbox: bool,
        /// A JSON settings file (the README's "Programme settings").
        #[arg(long)]
        settings: Option<std::path::PathBuf>,
        /// A chosen key, for development only (else 32 random bytes).
        #[arg(long)]
        api_key: Option<String>,
        #[command(flatten)]
        countries: CountryChoice,
    },
    /// List the programmes (from the registry partition).
    ListProgrammes,
    /// Change a programme's settings (every api key's copy).
    UpdateProgramme {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        settings: Option<std::path::PathBuf>,
        #[command(flatten)]
        countries: CountryChoice,
    },
    /// Disable a programme: every request with its keys is refused (destructive).
    DisableProgramme {
        #[arg(long)]
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Enable a disabled programme.
    EnableProgramme {
        #[arg(long)]
        id: String,
    },
    /// Add an api key to a programme (for rotation; printed once).
    AddApiKey {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        api_key: Option<String>,
    },
    /// List a programme's api keys (ids and creation times, never a key).
    ListApiKeys {
        #[arg(long)]
        programme: String,
    },
    /// Revoke an api key (destructive: refused everywhere within 60 s).
    RevokeApiKey {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        key_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Register programmes created before the registry existed (once; scans the table).
    RegisterLegacyProgrammes,
    /// Make an ACTIVE BIOMETRIC factor without a device (tests, mobile SDK factors).
    AddBiometric {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        user: String,
    },
    /// Mint a user token signed with JWT_HS256_SECRET (local and sandbox use).
    MintToken {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        phone: Option<String>,
        /// Add `amr: ["pwd", "mfa"]` (a freshly stepped-up token).
        #[arg(long)]
        mfa: bool,
        /// Lifetime in seconds (at most 86400: longer tokens are refused).
        #[arg(long, default_value_t = 3_600)]
        ttl: i64,
    },
    /// The operator actions recorded, newest first.
    ListAudit {
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
    /// Print everything held about one user (GDPR Art. 15).
    ExportUser {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        user: String,
    },
    /// Erase one user: factors, challenges, payments, grants, idempotency records, the
    /// device key's registration and SNS endpoint, their hold on the Authy user (GDPR
    /// Art. 17; destructive).
    EraseUser {
        #[arg(long)]
        programme: String,
        #[arg(long)]
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// Where a live programme may send SMS.
#[derive(Args)]
struct CountryChoice {
    /// Calling codes (`44,33`), or `*` for every country.
    #[arg(long, conflicts_with = "inherit_countries")]
    countries: Option<String>,
    /// The deployment's default allow-list.
    #[arg(long)]
    inherit_countries: bool,
}

/// What a command prints: lines, or with `--json` one object.
struct Out {
    json: bool,
    value: serde_json::Map<String, Value>,
}

impl Out {
    fn line(&self, text: impl std::fmt::Display) {
        if !self.json {
            emit(&text);
        }
    }
    fn set(&mut self, key: &str, value: Value) {
        self.value.insert(key.to_owned(), value);
    }
    fn finish(self) {
        if self.json {
            emit(&Value::Object(self.value));
        }
    }
}

/// One line on stdout; a closed pipe (`factors-admin ... | head -1`) ends the output, not the
/// tool (no panic, and what was done stays done).
fn emit(text: &dyn std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

async fn store(config: &Config) -> DynamoStore {
    let table = config
        .table_name
        .clone()
        .unwrap_or_else(|| "additional-factors".into());
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

/// Who is acting: the caller's AWS identity as STS reports it.
async fn caller(config: &Config) -> String {
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    match aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => identity.arn().unwrap_or("unknown").to_owned(),
        Err(error) => {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            eprintln!(
                "warning: STS did not say who is acting ({error}); recorded as local user {user:?}"
            );
            format!("unverified:{user}")
        }
    }
}

/// Records an operator action (after it succeeded).
async fn audit(
    store: &DynamoStore,
    config: &Config,
    action: &str,
    target: String,
    detail: String,
) -> Result<(), BoxError> {
    let mut nonce = [0u8; 4];
    SystemRandom::default().fill(&mut nonce)?;
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let record = AuditRecord {
        at_ms,
        who: caller(config).await,
        action: action.to_owned(),
        target,
        detail,
    };
    store.record_audit(&record, &hex(&nonce)).await?;
    Ok(())
}

/// A destructive command goes on with `--yes`, or when the operator types the target's name
/// on a terminal; otherwise it is refused.
fn confirm(yes: bool, what: &str, name: &str) -> Result<(), BoxError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!("{what} is destructive: pass --yes to confirm").into());
    }
    eprint!("{what}: type {name:?} to confirm: ");
    let mut typed = String::new();
    std::io::stdin().read_line(&mut typed)?;
    if typed.trim() == name {
        Ok(())
    } else {
        Err("not confirmed: nothing changed".into())
    }
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
fn choose_countries(
    choice: &CountryChoice,
    programme: &mut Programme,
    out: &Out,
) -> Result<(), BoxError> {
    if let Some(list) = &choice.countries {
        programme.allowed_country_codes = match Countries::parse(list)? {
            Countries::All => vec!["*".to_owned()],
            Countries::Only(codes) if codes.is_empty() => {
                return Err("--countries needs calling codes (44,33) or *".into())
            }
            Countries::Only(codes) => codes,
        };
        out.line(format!(
            "countries: {}",
            programme.allowed_country_codes.join(",")
        ));
        return Ok(());
    }
    if !programme.allowed_country_codes.is_empty() || programme.sandbox {
        return Ok(());
    }
    if choice.inherit_countries {
        out.line(format!(
            "countries: the deployment's default, {}",
            deployment_countries()
        ));
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
    // Unknown or misspelled flags and commands exit 2 (clap), with what was expected.
    let cli = Cli::parse();
    let mut out = Out {
        json: cli.json,
        value: serde_json::Map::new(),
    };
    match run(cli.command, &mut out).await {
        Ok(()) => {
            out.finish();
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            if out.json {
                emit(&json!({ "error": error.to_string() }));
            }
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, out: &mut Out) -> Result<(), BoxError> {
    let config = Config::from_env(Mode::Local)?;
    match command {
        Command::CreateTable => {
            let store = store(&config).await;
            let created = store.create_table_if_missing().await?;
            out.line(if created {
                "table created"
            } else {
                "table already exists"
            });
            out.set("created", json!(created));
            if created {
                audit(
                    &store,
                    &config,
                    "create-table",
                    "table".into(),
                    String::new(),
                )
                .await?;
            }
        }
        Command::CreateProgramme {
            id,
            name,
            sandbox,
            settings: file,
            api_key,
            countries,
        } => {
            let mut programme: Programme = match &file {
                Some(path) => settings::parse(&std::fs::read_to_string(path)?)?,
                None => Programme::new(id.clone().ok_or("--id is required")?, false),
            };
            if let Some(id) = id {
                programme.id = id;
            }
            if let Some(name) = name {
                programme.name = name;
            }
            programme.sandbox |= sandbox;
            choose_countries(&countries, &mut programme, out)?;
            programme.validate()?;
            let (api_key, record) = new_api_key(api_key.as_ref())?;
            let store = store(&config).await;
            store.create_programme(&programme, &record).await?;
            out.line(format!(
                "programme {} created (sandbox: {})",
                programme.id, programme.sandbox
            ));
            out.line(format!(
                "api key (shown once, only its SHA-256 is stored): {api_key}"
            ));
            out.line(format!("key id (to list or revoke it): {}", record.key_id));
            out.set("programme", json!(programme.id));
            out.set("sandbox", json!(programme.sandbox));
            out.set("apiKey", json!(api_key));
            out.set("keyId", json!(record.key_id));
            let target = format!("programme {}", programme.id);
            let detail = format!("sandbox={} key {}", programme.sandbox, record.key_id);
            audit(&store, &config, "create-programme", target, detail).await?;
        }
        Command::ListProgrammes => {
            let programmes = store(&config).await.registered_programmes().await?;
            for p in &programmes {
                out.line(format!(
                    "{}\tname={:?}\tsandbox={}\tdisabled={}\tchannels={:?}",
                    p.id, p.name, p.sandbox, p.disabled, p.enabled_channels
                ));
            }
            out.set(
                "programmes",
                programmes
                    .iter()
                    .map(|p| {
                        json!({"id": p.id, "name": p.name, "sandbox": p.sandbox,
                               "disabled": p.disabled,
                               "channels": p.enabled_channels.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
                    })
                    .collect(),
            );
        }
        Command::UpdateProgramme {
            id,
            name,
            settings: file,
            countries,
        } => {
            let store = store(&config).await;
            let mut programme = registered(&store, &id).await?;
            if let Some(path) = &file {
                programme = settings::parse(&std::fs::read_to_string(path)?)?;
                programme.id = id.clone();
            }
            if let Some(name) = name {
                programme.name = name;
            }
            if countries.inherit_countries {
                programme.allowed_country_codes.clear();
            }
            choose_countries(&countries, &mut programme, out)?;
            programme.validate()?;
            store.update_programme(&programme).await?;
            out.line(format!(
                "programme {id} updated (every api key; functions see it within 60 s)"
            ));
            out.set("programme", json!(id));
            let detail = file.map_or_else(String::new, |f| format!("settings {}", f.display()));
            audit(
                &store,
                &config,
                "update-programme",
                format!("programme {id}"),
                detail,
            )
            .await?;
        }
        Command::DisableProgramme { id, yes } => {
            confirm(yes, &format!("disabling programme {id}"), &id)?;
            set_disabled(&config, out, &id, true).await?;
        }
        Command::EnableProgramme { id } => set_disabled(&config, out, &id, false).await?,
        Command::AddApiKey { programme, api_key } => {
            let store = store(&config).await;
            let (api_key, record) = new_api_key(api_key.as_ref())?;
            store.add_api_key(&programme, &record).await?;
            out.line(format!(
                "api key added to {programme} (shown once, only its SHA-256 is stored): {api_key}"
            ));
            out.line(format!("key id (to list or revoke it): {}", record.key_id));
            out.set("apiKey", json!(api_key));
            out.set("keyId", json!(record.key_id));
            let target = format!("key {} of {programme}", record.key_id);
            audit(&store, &config, "add-api-key", target, String::new()).await?;
        }
        Command::ListApiKeys { programme } => {
            let keys = store(&config).await.api_keys(&programme).await?;
            for key in &keys {
                out.line(format!("{}\tcreated_at={}", key.key_id, key.created_at));
            }
            out.set(
                "keys",
                keys.iter()
                    .map(|k| json!({"keyId": k.key_id, "createdAt": k.created_at}))
                    .collect(),
            );
        }
        Command::RevokeApiKey {
            programme,
            key_id,
            yes,
        } => {
            confirm(
                yes,
                &format!("revoking key {key_id} of {programme}"),
                &key_id,
            )?;
            let store = store(&config).await;
            store.revoke_api_key(&programme, &key_id).await?;
            out.line(format!(
                "api key {key_id} of {programme} revoked (refused everywhere within 60 s)"
            ));
            out.set("revoked", json!(key_id));
            let target = format!("key {key_id} of {programme}");
            audit(&store, &config, "revoke-api-key", target, String::new()).await?;
        }
        Command::RegisterLegacyProgrammes => {
            let store = store(&config).await;
            let added = store.register_legacy_programmes(SystemClock.now()).await?;
            out.line(format!(
                "registered: {}",
                if added.is_empty() {
                    "none".to_owned()
                } else {
                    added.join(", ")
                }
            ));
            out.set("registered", json!(added));
            if !added.is_empty() {
                let detail = added.join(",");
                audit(
                    &store,
                    &config,
                    "register-legacy-programmes",
                    "registry".into(),
                    detail,
                )
                .await?;
            }
        }
        Command::AddBiometric { programme, user } => {
            let key = UserKey {
                programme_id: programme,
                credential_id: user,
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
            let store = store(&config).await;
            store.put_factor(&key, &factor).await?;
            out.line(format!(
                "BIOMETRIC factor ACTIVE for {} in {}",
                key.credential_id, key.programme_id
            ));
            out.set("status", json!("ACTIVE"));
            let target = format!("user {} of {}", key.credential_id, key.programme_id);
            audit(&store, &config, "add-biometric", target, String::new()).await?;
        }
        Command::MintToken {
            programme,
            user,
            phone,
            mfa,
            ttl,
        } => {
            let secret = config
                .tokens
                .hs256_secret
                .clone()
                .ok_or("JWT_HS256_SECRET is not set")?;
            let now = SystemClock.now();
            let mut claims = json!({
                "sub": user, "programme_id": programme,
                "iss": config.tokens.issuer, "aud": config.tokens.audience,
                "iat": now, "exp": now + ttl,
            });
            if let Some(phone) = phone {
                claims["phone_number"] = phone.into();
            }
            if mfa {
                claims["amr"] = json!(["pwd", "mfa"]);
            }
            let token = mint_hs256(secret.as_bytes(), &claims)?;
            out.line(&token);
            out.set("token", json!(token));
        }
        Command::ListAudit { limit } => {
            let records = store(&config).await.audit_records(limit).await?;
            for r in &records {
                out.line(format!(
                    "{}\t{}\t{}\t{}\t{}",
                    additional_factors::domain::device::rfc3339(r.at_ms / 1_000),
                    r.who,
                    r.action,
                    r.target,
                    r.detail
                ));
            }
            out.set(
                "records",
                records.iter().map(AuditRecord::to_json).collect(),
            );
        }
        Command::ExportUser { programme, user } => {
            let key = UserKey {
                programme_id: programme,
                credential_id: user,
            };
            let store = store(&config).await;
            let items: Vec<Value> = store
                .user_items(&key)
                .await?
                .iter()
                .map(|item| {
                    Value::Object(
                        item.iter()
                            .filter(|(name, _)| name.as_str() != "pk")
                            .map(|(name, value)| (name.clone(), attribute_json(value)))
                            .collect(),
                    )
                })
                .collect();
            out.line(format!(
                "{} item(s) held about {} of {}",
                items.len(),
                key.credential_id,
                key.programme_id
            ));
            for item in &items {
                out.line(item);
            }
            out.set("items", Value::Array(items));
            let target = format!("user {} of {}", key.credential_id, key.programme_id);
            audit(&store, &config, "export-user", target, String::new()).await?;
        }
        Command::EraseUser {
            programme,
            user,
            yes,
        } => {
            confirm(yes, &format!("erasing user {user} of {programme}"), &user)?;
            let key = UserKey {
                programme_id: programme,
                credential_id: user,
            };
            erase_user(&config, out, &key).await?;
        }
    }
    Ok(())
}

async fn set_disabled(
    config: &Config,
    out: &mut Out,
    id: &str,
    disabled: bool,
) -> Result<(), BoxError> {
    let store = store(config).await;
    let mut programme = registered(&store, id).await?;
    programme.disabled = disabled;
    store.update_programme(&programme).await?;
    let state = if disabled { "disabled" } else { "enabled" };
    out.line(format!("programme {id} {state}"));
    out.set("programme", json!(id));
    out.set("disabled", json!(disabled));
    let action = if disabled {
        "disable-programme"
    } else {
        "enable-programme"
    };
    audit(
        &store,
        config,
        action,
        format!("programme {id}"),
        String::new(),
    )
    .await
}

/// GDPR Art. 17: every item of the user's partition, the device key's registration, the
/// device's SNS endpoint, and the user's hold on the Authy user (forgotten at Authy when no
/// factor in any programme holds it any more, if this shell has the Authy key); an event on
/// the events topic (`EVENTS_TOPIC_ARN`) says the user was erased.
async fn erase_user(config: &Config, out: &mut Out, user: &UserKey) -> Result<(), BoxError> {
    use additional_factors::store::Unlinking;
    let store = store(config).await;
    let items = store.user_items(user).await?;
    let mut removed: std::collections::BTreeMap<String, usize> = Default::default();
    let mut identities = Vec::new();
    let sdk = sdk_config(config.sns_endpoint.as_deref()).await;
    for item in &items {
        let sk = schema::get_s(item, "sk", "erase_user")?;
        if sk.starts_with("FACTOR#") {
            let factor = schema::factor_from_item(item)?;
            if let Some(device) = &factor.device {
                let thumbprint = device.key.thumbprint();
                let registration = schema::device_key_key(&thumbprint);
                store
                    .delete_item(&registration.pk, &registration.sk)
                    .await?;
                identities.push(format!("device key {thumbprint}"));
                if let Some(endpoint) = device.endpoint.as_deref().filter(|e| e.starts_with("arn:"))
                {
                    aws_sdk_sns::Client::new(&sdk)
                        .delete_endpoint()
                        .endpoint_arn(endpoint)
                        .send()
                        .await?;
                    identities.push(format!("SNS endpoint {endpoint}"));
                }
            }
            if let Some(provider_ref) = &factor.provider_ref {
                let last = store.release_provider_user(provider_ref, user).await?;
                let forgotten = if !last {
                    "still held by another factor: kept".to_owned()
                } else {
                    match additional_factors::config::push_provider(config) {
                        Ok((provider, _)) => match provider.forget_user(provider_ref).await {
                            Ok(()) => "forgotten at Authy".to_owned(),
                            Err(error) => format!("not forgotten at Authy: {error}"),
                        },
                        Err(_) => "no Authy key in this shell (AUTHY_API_KEY): delete it in the Authy console".to_owned(),
                    }
                };
                identities.push(format!("Authy user {provider_ref}: {forgotten}"));
            }
        }
        let pk = schema::get_s(item, "pk", "erase_user")?;
        store.delete_item(&pk, &sk).await?;
        let kind = sk.split('#').next().unwrap_or("ITEM").to_owned();
        *removed.entry(kind).or_default() += 1;
    }
    let published = publish_erased(config, user).await;
    for (kind, count) in &removed {
        out.line(format!("removed {count} {kind} item(s)"));
    }
    for identity in &identities {
        out.line(format!("removed {identity}"));
    }
    out.line(format!(
        "user {} of {} erased; {published}",
        user.credential_id, user.programme_id
    ));
    out.set("removed", json!(removed));
    out.set("identities", json!(identities));
    out.set("event", json!(published));
    let target = format!("user {} of {}", user.credential_id, user.programme_id);
    let detail = format!("{} item(s)", items.len());
    audit(&store, config, "erase-user", target, detail).await
}

/// Announces an erasure on the events topic, when this shell names it.
async fn publish_erased(config: &Config, user: &UserKey) -> String {
    let Some(topic) = config.events_topic_arn.clone() else {
        return "no EVENTS_TOPIC_ARN here: no event published".into();
    };
    let sdk = sdk_config(config.sns_endpoint.as_deref()).await;
    let event = json!({"type": "user_erased", "credentialId": user.credential_id,
                       "programmeId": user.programme_id,
                       "publishedTimestamp": SystemClock.now() * 1_000});
    let kind = match aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("user_erased")
        .build()
    {
        Ok(kind) => kind,
        Err(error) => return format!("event not published: {error}"),
    };
    match aws_sdk_sns::Client::new(&sdk)
        .publish()
        .topic_arn(&topic)
        .message(event.to_string())
        .message_attributes("type", kind)
        .send()
        .await
    {
        Ok(_) => "event user_erased published".into(),
        Err(error) => format!("event not published: {error}"),
    }
}
