//! `template.yaml` against the code: every route of `openapi.yaml` has exactly one function
//! and event, every function binary is deployed, each function's policy grants exactly the
//! actions its store and SMS calls use, and the table, logs and secrets are set up as the
//! README says. (cfn-lint and `sam validate --lint` run in scripts/test.)

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

fn load(name: &str) -> Value {
    let text =
        std::fs::read_to_string(format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// A tagged value (`!Ref X`, `!GetAtt X.Arn`, `!Sub ...`) as "Tag value".
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, text(&tagged.value)),
        Value::Sequence(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => format!("{other:?}"),
    }
}

/// The actions each function may use, and why.
fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    // Every function: GetItem (programme by api key). Every mutating route: PutItem (claim an
    // idempotency-ref), UpdateItem (keep its response), DeleteItem (drop the claim).
    let mutating = [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ];
    let with = |extra: &[&'static str]| {
        mutating
            .iter()
            .chain(extra)
            .copied()
            .collect::<BTreeSet<_>>()
    };
    BTreeMap::from([
        (
            "list-factors",
            BTreeSet::from(["dynamodb:GetItem", "dynamodb:Query"]),
        ),
        // The only function that sends SMS (sns:Publish to phone numbers only).
        ("enrol-sms-otp", with(&["sns:Publish"])),
        // Functions that make a factor ACTIVE/INACTIVE or remove it publish a lifecycle event:
        // sns:Publish on the events topic only (they cannot send an SMS).
        ("verify-sms-otp", with(&["sns:Publish"])),
        // Query: the step-up check lists the user's factors; ConditionCheckItem: "not already
        // ACTIVE" inside the reservation transaction.
        (
            "enrol-push",
            with(&["dynamodb:Query", "dynamodb:ConditionCheckItem"]),
        ),
        // sns:DeleteEndpoint: an unlinked BIOMETRIC device's endpoint.
        ("unlink-push", with(&["sns:Publish", "sns:DeleteEndpoint"])),
        // A device's new push token: its endpoint's token.
        ("update-device-push", with(&["sns:SetEndpointAttributes"])),
        // BIOMETRIC step two: the device's endpoint, made (and dropped if the activation
        // loses a race); the ACTIVE event.
        (
            "verify-biometric",
            with(&[
                "sns:Publish",
                "sns:CreatePlatformEndpoint",
                "sns:DeleteEndpoint",
            ]),
        ),
        ("simulate-push", with(&["sns:Publish"])),
        // GetItem: the request's user; PutItem: the nonce (and a step-up grant); UpdateItem:
        // approve or deny; ConditionCheckItem: a step-up's Authy factor is still ACTIVE;
        // kms: an approved push payment's proof.
        (
            "authy-callback",
            BTreeSet::from([
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
                "sns:Publish",
                "kms:Sign",
                "kms:GetPublicKey",
            ]),
        ),
        // Payments: only the functions that verify a payment challenge sign (kms:Sign); the
        // JWKS reads public keys and nothing else, not even the table.
        (
            "payment-sms",
            with(&["dynamodb:ConditionCheckItem", "sns:Publish"]),
        ),
        (
            "verify-payment-sms",
            with(&["sns:Publish", "kms:Sign", "kms:GetPublicKey"]),
        ),
        // sns:Publish: a BIOMETRIC challenge's push, to devices' endpoints only.
        ("payment-push", with(&["sns:Publish"])),
        (
            "get-payment-challenge",
            BTreeSet::from(["dynamodb:GetItem"]),
        ),
        ("jwks", BTreeSet::from(["kms:GetPublicKey"])),
        ("sandbox-jwks", BTreeSet::from(["kms:GetPublicKey"])),
        (
            "simulate-payment",
            with(&[
                "dynamodb:ConditionCheckItem",
                "sns:Publish",
                "kms:Sign",
                "kms:GetPublicKey",
            ]),
        ),
        // Step-up: the SMS start sends SMS (to phone numbers only) and checks the factor is
        // ACTIVE inside its transaction; verify and the simulator publish outcomes.
        (
            "step-up-sms",
            with(&["dynamodb:ConditionCheckItem", "sns:Publish"]),
        ),
        ("verify-step-up-sms", with(&["sns:Publish"])),
        // No SNS at all: the push goes to Authy.
        ("step-up-push", with(&["sns:Publish"])),
        // The device's pending challenges: a read of its factor, a query of its answers.
        (
            "list-device-challenges",
            BTreeSet::from(["dynamodb:GetItem", "dynamodb:Query"]),
        ),
        // The device's answer settles a step-up (the grant) or a payment (its proof, by the
        // programme's key), while the factor is ACTIVE; announced.
        (
            "answer-device-challenge",
            with(&[
                "dynamodb:ConditionCheckItem",
                "sns:Publish",
                "kms:Sign",
                "kms:GetPublicKey",
            ]),
        ),
        // A read, and marking a pending challenge EXPIRED (announced).
        (
            "get-step-up-challenge",
            BTreeSet::from(["dynamodb:GetItem", "dynamodb:UpdateItem", "sns:Publish"]),
        ),
        (
            "simulate-step-up",
            with(&["dynamodb:ConditionCheckItem", "sns:Publish"]),
        ),
    ])
}

struct Function {
    binary: String,
    events: Vec<(String, String)>,
    statements: Vec<Value>,
}

fn functions(template: &Value) -> BTreeMap<String, Function> {
    let mut found = BTreeMap::new();
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name:?}"
        );
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_owned();
        let events = resource["Properties"]["Events"]
            .as_mapping()
            .unwrap()
            .values()
            .map(|e| {
                assert_eq!(e["Type"], "Api");
                assert_eq!(text(&e["Properties"]["RestApiId"]), "!Ref Api");
                (
                    e["Properties"]["Method"].as_str().unwrap().to_owned(),
                    e["Properties"]["Path"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let statements = resource["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap().clone())
            // `!If [Condition, statement, !Ref AWS::NoValue]`: the statement when it applies.
            .map(|statement| match statement {
                Value::Tagged(tagged) if tagged.tag == "!If" => {
                    assert_eq!(text(&tagged.value[2]), "!Ref AWS::NoValue");
                    tagged.value[1].clone()
                }
                statement => statement,
            })
            .collect();
        let previous = found.insert(
            binary.clone(),
            Function {
                binary,
                events,
                statements,
            },
        );
        assert!(previous.is_none(), "{name:?}: binary deployed twice");
    }
    found
}

#[test]
fn every_route_has_exactly_one_function_and_event() {
    let template = load("template.yaml");
    let spec = load("openapi.yaml");
    let mut routed = Vec::new();
    for f in functions(&template).values() {
        routed.extend(f.events.iter().cloned());
    }
    let unique: BTreeSet<_> = routed.iter().cloned().collect();
    assert_eq!(unique.len(), routed.len(), "a route is served twice");
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for method in item.as_mapping().unwrap().keys() {
            documented.insert((
                method.as_str().unwrap().to_uppercase(),
                path.as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(unique, documented);
}

#[test]
fn every_function_binary_is_deployed() {
    let template = load("template.yaml");
    let deployed: BTreeSet<String> = functions(&template).keys().cloned().collect();
    let dir = format!("{}/../functions", env!("CARGO_MANIFEST_DIR"));
    let crates: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(deployed, crates);
    assert_eq!(
        deployed,
        allowed().keys().map(|k| (*k).to_owned()).collect()
    );
}

#[test]
fn each_policy_grants_exactly_what_its_function_uses() {
    let template = load("template.yaml");
    let allowed = allowed();
    for (binary, function) in functions(&template) {
        let mut granted = BTreeSet::new();
        for statement in &function.statements {
            assert_eq!(statement["Effect"], "Allow");
            let actions: Vec<String> = statement["Action"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            for action in &actions {
                assert!(!action.contains('*'), "{binary}: wildcard action {action}");
                if action == "secretsmanager:BatchGetSecretValue" {
                    // One request for a function's secrets: the action names no resource,
                    // and answers only the secrets GetSecretValue allows (below).
                    assert_eq!(text(&statement["Resource"]), "*", "{binary}");
                    assert_eq!(actions.len(), 1, "{binary}");
                } else if action.starts_with("secretsmanager:") {
                    // Checked with the secrets each function names (below).
                    assert_eq!(action, "secretsmanager:GetSecretValue", "{binary}");
                } else if action == "sns:GetSMSAttributes" {
                    // Account-level SMS settings, read at init to open SNS's connection: the
                    // action takes no resource.
                    assert_eq!(text(&statement["Resource"]), "*", "{binary}");
                    assert_eq!(actions.len(), 1, "{binary}");
                } else if action.starts_with("kms:") {
                    // The proof signing key (and, after a rotation, the previous one) only.
                    let resource = text(&statement["Resource"]);
                    assert!(
                        resource.contains("ProofSigningKey.Arn") && !resource.contains('*'),
                        "{binary}: {resource}"
                    );
                } else if action.starts_with("dynamodb:") {
                    assert_eq!(
                        text(&statement["Resource"]),
                        "!GetAtt FactorsTable.Arn",
                        "{binary}"
                    );
                } else if action == "sns:CreatePlatformEndpoint" {
                    // A device's endpoint, under a platform application only.
                    assert!(text(&statement["Resource"]).ends_with(":app/*"), "{binary}");
                } else if matches!(
                    action.as_str(),
                    "sns:DeleteEndpoint" | "sns:SetEndpointAttributes"
                ) || (action == "sns:Publish"
                    && text(&statement["Resource"]).ends_with(":endpoint/*"))
                {
                    // Devices' endpoints only: no topic, no phone number.
                    assert!(
                        text(&statement["Resource"]).ends_with(":endpoint/*"),
                        "{binary}"
                    );
                } else if binary == "enrol-sms-otp"
                    || binary == "step-up-sms"
                    || binary == "payment-sms"
                {
                    assert_eq!(action, "sns:Publish");
                    // Direct-to-phone SMS only: no topic can be published to.
                    assert_eq!(statement["NotResource"], "arn:aws:sns:*:*:*", "{binary}");
                    assert!(statement.get("Resource").is_none());
                } else {
                    // Lifecycle events: the events topic and nothing else (no SMS).
                    assert_eq!(action, "sns:Publish");
                    assert_eq!(
                        text(&statement["Resource"]),
                        "!Ref FactorEventsTopic",
                        "{binary}"
                    );
                    assert!(statement.get("NotResource").is_none());
                }
            }
            granted.extend(actions);
        }
        let (users, authy, reads) = needs_of(&binary);
        let reaches_sns = allowed[binary.as_str()]
            .iter()
            .any(|a| a.starts_with("sns:"));
        // Init opens the table's connection with a GetItem: only where the policy allows it.
        assert_eq!(
            reads,
            expected_reads(&allowed, &binary),
            "{binary}: READS_TABLE"
        );
        let expected: BTreeSet<String> = allowed[function.binary.as_str()]
            .iter()
            .copied()
            .chain((users || authy).then_some("secretsmanager:GetSecretValue"))
            .chain((users || authy).then_some("secretsmanager:BatchGetSecretValue"))
            .chain(reaches_sns.then_some("sns:GetSMSAttributes"))
            .map(str::to_owned)
            .collect();
        assert_eq!(granted, expected, "{binary}");
    }
    // verify-sms-otp may publish lifecycle events, never an SMS: its only sns:Publish
    // statement is on the events topic (checked above).
}

fn expected_reads(allowed: &BTreeMap<&'static str, BTreeSet<&'static str>>, binary: &str) -> bool {
    allowed[binary].contains("dynamodb:GetItem")
}

/// Least privilege inside the table: no function can write a `PROGRAMME#` item (a tenant's
/// settings and api key), the operator's registry or the audit trail, so a compromised
/// function cannot mint, change or revoke a programme or a key, nor rewrite who did.
#[test]
fn no_function_can_write_a_programme_item() {
    const WRITES: [&str; 5] = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    ];
    let template = load("template.yaml");
    let mut writers = 0;
    for (binary, function) in functions(&template) {
        for statement in &function.statements {
            let actions: Vec<&str> = statement["Action"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            if !actions.iter().any(|a| WRITES.contains(a)) {
                continue;
            }
            writers += 1;
            assert!(
                actions.iter().all(|a| WRITES.contains(a)),
                "{binary}: a write statement holds only writes (reads need no condition): {actions:?}"
            );
            let condition = statement["Condition"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{binary}: writes without a LeadingKeys condition"));
            assert_eq!(condition.len(), 1, "{binary}");
            let keys =
                &statement["Condition"]["ForAllValues:StringNotLike"]["dynamodb:LeadingKeys"];
            assert_eq!(
                keys.as_sequence()
                    .map(|k| k.iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>()),
                Some(vec!["PROGRAMME#*", "PROGRAMMES", "AUDIT"]),
                "{binary}: every written partition key is outside PROGRAMME#, the operator's registry and the operator's audit trail"
            );
        }
    }
    assert_eq!(
        writers, 18,
        "every function but list-factors, list-device-challenges, get-payment-challenge and the two jwks writes"
    );
    // ...and the store's programme items really live under that prefix, and the registry
    // in that partition.
    use additional_factors::store::dynamodb::schema;
    assert!(schema::programme_key("h").pk.starts_with("PROGRAMME#"));
    assert_eq!(schema::registry_programme_key("p").pk, "PROGRAMMES");
    assert_eq!(schema::registry_api_key_key("p", "k").pk, "PROGRAMMES");
}

#[test]
fn runtime_table_logs_and_secrets() {
    let t = load("template.yaml");
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    // Lambda's REPORT lines (duration, memory, init) are kept; X-Ray traces every function.
    assert_eq!(globals["LoggingConfig"]["SystemLogLevel"], "INFO");
    assert_eq!(globals["Tracing"], "Active");
    assert_eq!(t["Parameters"]["LogRetentionDays"]["Default"], 365);
    let env = &globals["Environment"]["Variables"];
    // No secret in any environment variable: the values are empty (events/env.json fills
    // them for `sam local invoke`), and nothing is resolved into the template at deploy time.
    for secret in ["JWT_HS256_SECRET", "OTP_HMAC_SECRET", "AUTHY_API_KEY"] {
        assert_eq!(env[secret], "", "{secret} must not be in the environment");
    }
    assert!(!load_text("template.yaml").contains("{{resolve:"));
    assert_eq!(
        text(&env["SECRETS_REFRESH_SECONDS"]),
        "!Ref SecretsRefreshSeconds"
    );
    assert_eq!(text(&env["SECRETS_FETCH"]), "!Ref SecretsFetch");
    assert_eq!(t["Parameters"]["SecretsFetch"]["Default"], "init");
    let table = &t["Resources"]["FactorsTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        additional_factors::store::dynamodb::TTL_ATTRIBUTE
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(t["Resources"]["FactorsTable"]["DeletionPolicy"], "Retain");
    let api = &t["Resources"]["Api"]["Properties"];
    assert!(api["MethodSettings"][0]["ThrottlingRateLimit"] != Value::Null);
    assert!(api["AccessLogSetting"]["DestinationArn"] != Value::Null);
    // An access-log line leads to the function's lines: Lambda's request id is on both.
    let access = text(&api["AccessLogSetting"]["Format"]);
    assert!(
        access.contains("$context.integration.requestId"),
        "{access}"
    );
    assert!(access.contains("$context.requestId"), "{access}");
    // Every function has a log group with a retention.
    let mut logged = BTreeSet::new();
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"] == "AWS::Logs::LogGroup"
            && resource["Properties"]["LogGroupName"] != Value::Null
        {
            assert!(
                resource["Properties"]["RetentionInDays"] != Value::Null,
                "{name:?}"
            );
            logged.insert(text(&resource["Properties"]["LogGroupName"]));
        }
    }
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"] == "AWS::Serverless::Function" {
            let group = format!("!Sub /aws/lambda/${{{}}}", name.as_str().unwrap());
            assert!(logged.contains(&group), "{group}");
        }
    }
    assert!(t["Outputs"]["ApiUrl"] != Value::Null && t["Outputs"]["TableName"] != Value::Null);
    assert_eq!(text(&env["EVENTS_TOPIC_ARN"]), "!Ref FactorEventsTopic");
    // Large allocations (an attacker's event) go back to the system when freed.
    assert_eq!(env["MALLOC_MMAP_THRESHOLD_"], "131072");
    // The functions' EMF metrics land in the stage's namespace, which the alarms read.
    assert_eq!(
        text(&env["METRICS_NAMESPACE"]),
        "!Sub additional-factors/${Stage}"
    );
    assert!(t["Outputs"]["EventsTopicArn"] != Value::Null);
}

/// SMS pumping closed by default: the deployment's country allow-list is a parameter with no
/// default (so `sam deploy --guided` asks for it), and its SMS budget per hour and per day
/// are parameters with defaults; all three reach every function.
#[test]
fn country_allow_list_and_sms_budget_are_parameters() {
    let t = load("template.yaml");
    let countries = &t["Parameters"]["DefaultAllowedCountryCodes"];
    assert_eq!(countries["Type"], "String");
    assert!(
        countries.get("Default").is_none(),
        "no default: the operator chooses"
    );
    for budget in ["SmsBudgetPerHour", "SmsBudgetPerDay"] {
        assert_eq!(t["Parameters"][budget]["Type"], "Number", "{budget}");
        assert!(
            t["Parameters"][budget]["Default"].as_u64().is_some(),
            "{budget}"
        );
    }
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, parameter) in [
        (
            "DEFAULT_ALLOWED_COUNTRY_CODES",
            "DefaultAllowedCountryCodes",
        ),
        ("SMS_BUDGET_PER_HOUR", "SmsBudgetPerHour"),
        ("SMS_BUDGET_PER_DAY", "SmsBudgetPerDay"),
    ] {
        assert_eq!(text(&env[variable]), format!("!Ref {parameter}"));
    }
}

#[test]
fn cargo_lambda_watch_routes_every_path_to_its_function() {
    let text =
        std::fs::read_to_string(format!("{}/../Cargo.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .unwrap();
    let mut routed = BTreeSet::new();
    for (path, target) in router {
        match target {
            toml::Value::String(function) => {
                routed.insert(("*".to_owned(), path.clone(), function.clone()));
            }
            toml::Value::Array(entries) => {
                for entry in entries {
                    routed.insert((
                        entry["method"].as_str().unwrap().to_owned(),
                        path.clone(),
                        entry["function"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            other => panic!("{other:?}"),
        }
    }
    let mut expected = BTreeSet::new();
    for (binary, function) in functions(&load("template.yaml")) {
        for (method, path) in function.events {
            expected.insert((method, path, binary.clone()));
        }
    }
    assert_eq!(routed, expected);
}

/// What each binary's handler declares it reaches (its ports, read through
/// `lambda::Function`), which decides the clients linked into it, agrees with the KMS and
/// SNS grants of its function in the template, and each binary's `main` runs the function
/// of the handler it is named after.
#[test]
fn each_binary_links_the_clients_its_policy_allows_and_no_others() {
    let declared = declared();
    let template = load("template.yaml");
    let functions = functions(&template);
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        declared.keys().copied().collect::<Vec<_>>()
    );
    for (binary, function) in &functions {
        let Declared {
            sms,
            events,
            push,
            signs,
            sandbox_signs,
            devices,
            reads,
            runs,
            ..
        } = declared[binary.as_str()];
        // SNS's connection is opened at init (GetSMSAttributes) exactly where the route's
        // success path reaches SNS: an SMS, an event (the template always names the topic),
        // a device's push.
        let sns_warm_up = function
            .statements
            .iter()
            .any(|s| text(&s["Action"]).contains("sns:GetSMSAttributes"));
        assert_eq!(
            sns_warm_up,
            sms || events || devices,
            "{binary}: SNS opened at init"
        );
        let table_grant = function
            .statements
            .iter()
            .any(|s| text(&s["Action"]).contains("dynamodb:"));
        assert_eq!(table_grant, reads, "{binary}: the table");
        let kms_resources = |action: &str| {
            function
                .statements
                .iter()
                .filter(|s| text(&s["Action"]).contains(action))
                .map(|s| text(&s["Resource"]))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (keys, signing_keys) = (kms_resources("kms:"), kms_resources("kms:Sign"));
        // Each key only where the handler's ports hold it: a simulator (the sandbox key
        // only) can never mint a proof the live JWKS vouches for.
        assert_eq!(
            keys.contains("!GetAtt ProofSigningKey.Arn"),
            signs,
            "{binary}: the live proof key"
        );
        assert_eq!(
            keys.contains("!GetAtt SandboxProofSigningKey.Arn"),
            sandbox_signs,
            "{binary}: the sandbox proof key"
        );
        // A rotated-out key verifies (the JWKS lists it) but never signs.
        assert!(
            !signing_keys.contains("PreviousProofKeyId"),
            "{binary}: kms:Sign on a previous key"
        );
        let sns_grant = |resource: &str| {
            function.statements.iter().any(|s| {
                text(&s["Action"]).contains("sns:Publish")
                    && (text(&s["Resource"]) == resource || text(&s["NotResource"]) == resource)
            })
        };
        assert_eq!(sns_grant("arn:aws:sns:*:*:*"), sms, "{binary}: SMS");
        assert_eq!(
            sns_grant("!Ref FactorEventsTopic"),
            events,
            "{binary}: events"
        );
        // Only the push routes call the provider (the callback only checks its signature).
        assert_eq!(
            push,
            binary.ends_with("-push")
                && binary != "simulate-push"
                && binary != "update-device-push",
            "{binary}"
        );
        let main = load_text(&format!("functions/{binary}/src/main.rs"));
        assert!(main.contains(runs), "{binary} runs {runs}");
        // The handler of the function's name: `enrol-sms-otp` runs `handlers::enrol_sms_otp`.
        let module = format!(
            "use additional_factors::{{handlers::{}::",
            binary.replace('-', "_")
        );
        assert!(main.contains(&module), "{binary} runs its own handler");
    }
}

fn load_text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Issue 13, item 4: what on-call is told of, each alarm to the alarm topic (e-mail optional),
/// and one dashboard.
#[test]
fn alarms_cover_errors_throttles_sms_spend_and_volume_push_failures_and_table_throttles() {
    let t = load("template.yaml");
    let resources = t["Resources"].as_mapping().unwrap();
    // Each alarm's metrics, as "Namespace MetricName" (single metric or metric math).
    let mut watched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let name = name.as_str().unwrap().to_owned();
        let p = &resource["Properties"];
        assert_eq!(text(&p["AlarmActions"]), "!Ref AlarmTopic", "{name}");
        assert!(
            p["AlarmDescription"].as_str().is_some_and(|d| d.len() > 40),
            "{name}: say what to do"
        );
        assert_eq!(p["TreatMissingData"], "notBreaching", "{name}");
        let mut metrics = BTreeSet::new();
        if p["MetricName"] != Value::Null {
            metrics.insert(format!(
                "{} {}",
                text(&p["Namespace"]),
                text(&p["MetricName"])
            ));
        }
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &m["MetricStat"]["Metric"];
            if metric != &Value::Null {
                metrics.insert(format!(
                    "{} {}",
                    text(&metric["Namespace"]),
                    text(&metric["MetricName"])
                ));
            }
        }
        watched.insert(name, metrics);
    }
    let all: BTreeSet<_> = watched.values().flatten().cloned().collect();
    for wanted in [
        "AWS/ApiGateway 5XXError",
        "AWS/Lambda Throttles",
        "AWS/SNS SMSMonthToDateSpentUSD",
        "AWS/SNS NumberOfNotificationsDelivered",
        "!Sub additional-factors/${Stage} PushDependencyFailures",
        "AWS/DynamoDB WriteThrottleEvents",
        "AWS/DynamoDB ReadThrottleEvents",
    ] {
        assert!(all.contains(wanted), "no alarm on {wanted}: {watched:?}");
    }
    // The push failures metric comes from the four functions that call Authy.
    let filtered: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
        .map(|r| text(&r["Properties"]["LogGroupName"]))
        .collect();
    for logs in [
        "EnrolPushLogs",
        "UnlinkPushLogs",
        "StepUpPushLogs",
        "PaymentPushLogs",
    ] {
        assert!(
            filtered.contains(&format!("!Ref {logs}")),
            "{logs}: {filtered:?}"
        );
    }
    // The log line the filter counts is the one the pipeline writes for a 503.
    let pipeline = load_text("shared/src/http/mod.rs");
    assert!(pipeline.contains("\"a dependency failed\""));
    // Alarms reach people only if someone subscribes: an optional e-mail parameter.
    assert_eq!(t["Parameters"]["AlarmEmail"]["Default"], "");
    let subscription = &t["Resources"]["AlarmEmailSubscription"];
    assert_eq!(subscription["Condition"], "HasAlarmEmail");
    assert_eq!(subscription["Properties"]["Protocol"], "email");
    assert_eq!(
        t["Resources"]["Dashboard"]["Type"],
        "AWS::CloudWatch::Dashboard"
    );
    assert!(t["Outputs"]["AlarmTopicArn"] != Value::Null);
}

/// Issue 13, item 7: the same deploy twice gives the same stack: environments in
/// samconfig.toml, tags, a table that cannot be deleted by accident, optional reserved
/// concurrency and custom domain; per-source and per-api-key limits ahead of the stage's.
#[test]
fn deploys_are_repeatable_per_environment_and_junk_cannot_throttle_a_tenant() {
    let t = load("template.yaml");
    let config: toml::Value = toml::from_str(&load_text("samconfig.toml")).unwrap();
    for (env, stage) in [("default", "dev"), ("prod", "prod")] {
        let deploy = &config[env]["deploy"]["parameters"];
        let overrides = deploy["parameter_overrides"].as_str().unwrap();
        assert!(
            overrides.contains(&format!("Stage=\"{stage}\"")),
            "{env}: {overrides}"
        );
        assert!(deploy["tags"].as_str().unwrap().contains(stage), "{env}");
        assert!(
            deploy["stack_name"].as_str().unwrap().ends_with(stage),
            "{env}"
        );
        assert_eq!(
            config[env]["build"]["parameters"]["beta_features"].as_bool(),
            Some(true)
        );
    }
    assert_eq!(
        config["prod"]["deploy"]["parameters"]["confirm_changeset"].as_bool(),
        Some(true)
    );
    let globals = &t["Globals"]["Function"];
    assert_eq!(text(&globals["Tags"]["stage"]), "!Ref Stage");
    assert!(text(&globals["ReservedConcurrentExecutions"]).contains("HasReservedConcurrency"));
    let table = &t["Resources"]["FactorsTable"]["Properties"];
    assert_eq!(table["DeletionProtectionEnabled"], true);
    let api = &t["Resources"]["Api"]["Properties"];
    for domain in ["ApiDomain", "ApiDomainMapping"] {
        assert_eq!(t["Resources"][domain]["Condition"], "HasDomain", "{domain}");
    }
    // Issue 22, item 7: one caller cannot throttle every tenant. An API Gateway throttle
    // counts a request before its api key is checked: at 5adf46a the SMS routes' 20/s was
    // spent by ~20 junk requests a second with random api keys from one address, and every
    // tenant's SMS was refused. Now no route has a throttle of its own, and AWS WAF (which an
    // HTTP API cannot carry: the API is a REST API) counts each source and each api key
    // before the stage's throttle, the deployment's capacity cap, sees the request.
    assert_eq!(t["Resources"]["Api"]["Type"], "AWS::Serverless::Api");
    assert!(
        api.get("MethodSettings")
            .unwrap()
            .as_sequence()
            .unwrap()
            .len()
            == 1
            && api["MethodSettings"][0]["ResourcePath"] == "/*"
            && api["MethodSettings"][0]["HttpMethod"] == "*",
        "one throttle, the stage's: no route's counts unauthenticated requests on its own"
    );
    // API Gateway's own answers: an unknown route is the functions' 404, not a REST API's
    // 403; its throttle a 429 with Retry-After.
    let gateway = &api["GatewayResponses"];
    let not_found = additional_factors::handlers::reply::ApiError::NotFound.to_reply();
    assert_eq!(gateway["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"], 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(
            gateway["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        serde_json::from_str::<serde_json::Value>(&not_found.body.unwrap()).unwrap()
    );
    assert_eq!(gateway["THROTTLED"]["StatusCode"], 429);
    assert!(gateway["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] != Value::Null);
    let acl = &t["Resources"]["ApiFirewall"];
    assert_eq!(acl["Type"], "AWS::WAFv2::WebACL");
    assert_eq!(acl["Properties"]["Scope"], "REGIONAL");
    let association = &t["Resources"]["ApiFirewallAssociation"]["Properties"];
    assert_eq!(text(&association["WebACLArn"]), "!GetAtt ApiFirewall.Arn");
    assert!(
        text(&association["ResourceArn"]).contains("/restapis/${Api}/stages/${Api.Stage}"),
        "the web ACL guards the API's stage"
    );
    let rule = |name: &str| {
        acl["Properties"]["Rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["Name"] == name)
            .unwrap_or_else(|| panic!("no rule {name}"))
            .clone()
    };
    let per_minute = |rule: &Value| {
        let limit = &rule["Statement"]["RateBasedStatement"];
        assert_eq!(limit["EvaluationWindowSec"], 60);
        let block = &rule["Action"]["Block"]["CustomResponse"];
        // Refused as the contract refuses a limit: 429 with Retry-After.
        assert_eq!(block["ResponseCode"], 429);
        assert!(block["ResponseHeaders"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|h| h["Name"] == "Retry-After"));
        let parameter = text(&limit["Limit"]).trim_start_matches("!Ref ").to_owned();
        t["Parameters"][parameter.as_str()]["Default"]
            .as_u64()
            .unwrap()
    };
    let per_source = rule("per-source");
    assert_eq!(
        per_source["Statement"]["RateBasedStatement"]["AggregateKeyType"],
        "IP"
    );
    let per_key = rule("per-api-key");
    let keys = &per_key["Statement"]["RateBasedStatement"];
    assert_eq!(keys["AggregateKeyType"], "CUSTOM_KEYS");
    assert_eq!(keys["CustomKeys"][0]["Header"]["Name"], "api-key");
    let default = |name: &str| t["Parameters"][name]["Default"].as_u64().unwrap();
    let stage_per_second = default("ThrottlingRateLimit");
    let source_per_second = per_minute(&per_source) / 60;
    let key_per_second = per_minute(&per_key) / 60;
    // What a flood of junk keys now costs one tenant. From one address, whatever keys it
    // sends: the web ACL lets through at most `source_per_second`, leaving the rest of the
    // stage to the tenants (before: 20/s from one address refused every tenant's SMS).
    let left_to_tenants_under_one_flood = stage_per_second - source_per_second;
    assert!(
        left_to_tenants_under_one_flood >= stage_per_second * 9 / 10,
        "one flooding address leaves the tenants {left_to_tenants_under_one_flood}/s of {stage_per_second}/s"
    );
    // To take the whole stage, a flood needs this many addresses, each at its limit.
    let sources_to_fill_the_stage = stage_per_second.div_ceil(source_per_second);
    assert!(
        sources_to_fill_the_stage >= 20,
        "{sources_to_fill_the_stage} addresses fill the stage (before: 1)"
    );
    // One api key (a tenant's own traffic, or its leaked key) cannot take every tenant's
    // capacity either.
    assert!(
        key_per_second * 4 <= stage_per_second,
        "one api key may use {key_per_second}/s of {stage_per_second}/s"
    );
    // The cost cap stays, after authentication: every SMS-sending function gets the
    // deployment-wide SMS budget (counted in the function, after the per-user, per-number
    // and per-programme limits), so what junk cannot reach, a tenant cannot exceed either.
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(text(&env["SMS_BUDGET_PER_HOUR"]), "!Ref SmsBudgetPerHour");
    assert_eq!(text(&env["SMS_BUDGET_PER_DAY"]), "!Ref SmsBudgetPerDay");
    assert!(default("SmsBudgetPerHour") > 0 && default("SmsBudgetPerDay") > 0);
}

/// Issue 13, item 8: `cargo lambda watch --env-file watch.env` (the README's command)
/// runs the functions with the same variables as `sam local invoke` (events/env.json), the
/// local servers reached on this machine instead of from a container.
#[test]
fn the_watch_env_file_has_every_variable_of_the_sam_local_one() {
    let sam: serde_json::Value = serde_json::from_str(&load_text("events/env.json")).unwrap();
    let sam = sam["Parameters"].as_object().unwrap();
    let watch: BTreeMap<String, String> = load_text("watch.env")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(
        watch.keys().collect::<BTreeSet<_>>(),
        sam.keys().collect::<BTreeSet<_>>()
    );
    for (k, v) in sam {
        let local = v
            .as_str()
            .unwrap()
            .replace("host.docker.internal", "127.0.0.1");
        assert_eq!(watch[k], local, "{k}");
    }
    assert!(load_text("README.md").contains("cargo lambda watch --env-file watch.env"));
}

/// What each function needs, from its `lambda::Function` constants: (the token and HMAC
/// keys, the Authy API key, reading the table).
fn needs_of(binary: &str) -> (bool, bool, bool) {
    let d = &declared()[binary];
    (d.users, d.authy, d.reads)
}

/// What one function binary declares, through its handler's ports (`lambda::Function`),
/// and the call its `main` makes.
#[derive(Clone, Copy)]
struct Declared {
    sms: bool,
    events: bool,
    push: bool,
    signs: bool,
    sandbox_signs: bool,
    devices: bool,
    users: bool,
    authy: bool,
    reads: bool,
    runs: &'static str,
}

fn declared() -> BTreeMap<&'static str, Declared> {
    use additional_factors::{
        handlers::{
            answer_device_challenge::AnswerDeviceChallenge, authy_callback::AuthyCallback,
            enrol_push::EnrolPush, enrol_sms_otp::EnrolSmsOtp,
            get_payment_challenge::GetPaymentChallenge, get_step_up_challenge::GetStepUpChallenge,
            jwks::Jwks, list_device_challenges::ListDeviceChallenges, list_factors::ListFactors,
            payment_push::PaymentPush, payment_sms::PaymentSms, sandbox_jwks::SandboxJwks,
            simulate_payment::SimulatePayment, simulate_push::SimulatePush,
            simulate_step_up::SimulateStepUp, step_up_push::StepUpPush, step_up_sms::StepUpSms,
            unlink_push::UnlinkPush, update_device_push::UpdateDevicePush,
            verify_biometric::VerifyBiometric, verify_payment_sms::VerifyPaymentSms,
            verify_sms_otp::VerifySmsOtp, verify_step_up_sms::VerifyStepUpSms,
        },
        lambda::{Function, Public, Simulator, User},
    };
    fn of<F: Function>(runs: &'static str) -> Declared {
        Declared {
            sms: F::SENDS_SMS,
            events: F::PUBLISHES_EVENTS,
            push: F::CALLS_PUSH_PROVIDER,
            signs: F::SIGNS_PROOFS,
            sandbox_signs: F::SIGNS_SANDBOX_PROOFS,
            devices: F::PUSHES_TO_DEVICES,
            users: F::AUTHENTICATES_USERS,
            authy: F::USES_CALLBACK_KEY,
            reads: F::READS_TABLE,
            runs,
        }
    }
    BTreeMap::from([
        (
            "list-factors",
            of::<User<ListFactors>>("lambda::run::<ListFactors>()"),
        ),
        (
            "enrol-sms-otp",
            of::<User<EnrolSmsOtp>>("lambda::run::<EnrolSmsOtp>()"),
        ),
        (
            "verify-sms-otp",
            of::<User<VerifySmsOtp>>("lambda::run::<VerifySmsOtp>()"),
        ),
        (
            "enrol-push",
            of::<User<EnrolPush>>("lambda::run::<EnrolPush>()"),
        ),
        (
            "unlink-push",
            of::<User<UnlinkPush>>("lambda::run::<UnlinkPush>()"),
        ),
        (
            "verify-biometric",
            of::<User<VerifyBiometric>>("lambda::run::<VerifyBiometric>()"),
        ),
        (
            "list-device-challenges",
            of::<User<ListDeviceChallenges>>("lambda::run::<ListDeviceChallenges>()"),
        ),
        (
            "answer-device-challenge",
            of::<User<AnswerDeviceChallenge>>("lambda::run::<AnswerDeviceChallenge>()"),
        ),
        (
            "update-device-push",
            of::<User<UpdateDevicePush>>("lambda::run::<UpdateDevicePush>()"),
        ),
        (
            "simulate-push",
            of::<Simulator<SimulatePush<true>, SimulatePush<false>>>(
                "lambda::run_simulator::<SimulatePush<true>, SimulatePush<false>>()",
            ),
        ),
        (
            "authy-callback",
            of::<Public<AuthyCallback>>("lambda::run_public::<AuthyCallback>()"),
        ),
        (
            "step-up-sms",
            of::<User<StepUpSms>>("lambda::run::<StepUpSms>()"),
        ),
        (
            "verify-step-up-sms",
            of::<User<VerifyStepUpSms>>("lambda::run::<VerifyStepUpSms>()"),
        ),
        (
            "step-up-push",
            of::<User<StepUpPush>>("lambda::run::<StepUpPush>()"),
        ),
        (
            "get-step-up-challenge",
            of::<User<GetStepUpChallenge>>("lambda::run::<GetStepUpChallenge>()"),
        ),
        (
            "simulate-step-up",
            of::<Simulator<SimulateStepUp<true>, SimulateStepUp<false>>>(
                "lambda::run_simulator::<SimulateStepUp<true>, SimulateStepUp<false>>()",
            ),
        ),
        (
            "payment-sms",
            of::<User<PaymentSms>>("lambda::run::<PaymentSms>()"),
        ),
        (
            "verify-payment-sms",
            of::<User<VerifyPaymentSms>>("lambda::run::<VerifyPaymentSms>()"),
        ),
        (
            "payment-push",
            of::<User<PaymentPush>>("lambda::run::<PaymentPush>()"),
        ),
        (
            "get-payment-challenge",
            of::<User<GetPaymentChallenge>>("lambda::run::<GetPaymentChallenge>()"),
        ),
        ("jwks", of::<Public<Jwks>>("lambda::run_public::<Jwks>()")),
        (
            "sandbox-jwks",
            of::<Public<SandboxJwks>>("lambda::run_public::<SandboxJwks>()"),
        ),
        (
            "simulate-payment",
            of::<Simulator<SimulatePayment<true>, SimulatePayment<false>>>(
                "lambda::run_simulator::<SimulatePayment<true>, SimulatePayment<false>>()",
            ),
        ),
    ])
}

/// Each function names the secrets its route uses, and no others, and may read exactly
/// those: `secretsmanager:GetSecretValue` on each named secret's ARN (`<name>-??????`, the
/// suffix Secrets Manager adds), no wildcard beyond it.
#[test]
fn each_function_names_and_may_read_only_the_secrets_its_route_uses() {
    let template = load("template.yaml");
    let arn = |parameter: &str| {
        format!(
            "!Sub arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{parameter}}}-??????"
        )
    };
    let mut fetching = 0;
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let (users, authy, _) = needs_of(binary);
        let env = &resource["Properties"]["Environment"]["Variables"];
        let named = |variable: &str| env.get(variable).map(text);
        let mut expected_ids = BTreeMap::new();
        let mut expected_arns = BTreeSet::new();
        if users {
            // Named only when there is one (a JWKS-only deployment has no HS256 key).
            expected_ids.insert(
                "JWT_HS256_SECRET_ID",
                "!If HasTokenSecret,!Ref TokenSecretName,".to_owned(),
            );
            expected_ids.insert("OTP_HMAC_SECRET_ID", "!Ref OtpSecretName".to_owned());
            expected_arns.insert(arn("TokenSecretName"));
            expected_arns.insert(arn("OtpSecretName"));
        }
        if authy {
            expected_ids.insert(
                "AUTHY_API_KEY_SECRET_ID",
                "!If HasAuthy,!Ref AuthySecretName,".to_owned(),
            );
            expected_arns.insert(arn("AuthySecretName"));
        }
        for variable in [
            "JWT_HS256_SECRET_ID",
            "OTP_HMAC_SECRET_ID",
            "AUTHY_API_KEY_SECRET_ID",
        ] {
            assert_eq!(
                named(variable),
                expected_ids.get(variable).cloned(),
                "{name:?}: {variable}"
            );
        }
        let function = &functions(&template)[binary];
        let granted: BTreeSet<String> = function
            .statements
            .iter()
            .filter(|s| text(&s["Action"]).contains("secretsmanager:GetSecretValue"))
            .flat_map(|s| match &s["Resource"] {
                Value::Sequence(items) => items.clone(),
                one => vec![one.clone()],
            })
            .map(|resource| match resource {
                // `!If [HasAuthy, arn, !Ref AWS::NoValue]`: the ARN when Authy (or the HS256
                // key) is configured.
                Value::Tagged(tagged) if tagged.tag == "!If" => text(&tagged.value[1]),
                resource => text(&resource),
            })
            .collect();
        assert_eq!(granted, expected_arns, "{name:?}");
        fetching += usize::from(!expected_arns.is_empty());
    }
    // Every function but the two JWKS fetches one.
    assert_eq!(fetching, 21);
}

/// Issue 25, items 2 and 4: an on-call that pages right, and production hygiene.
#[test]
fn alarms_page_right_and_production_is_tidy() {
    let t = load("template.yaml");
    let resources = t["Resources"].as_mapping().unwrap();
    let functions: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect();
    // Every alarm says when it clears, not only when it fires.
    let mut throttled = BTreeSet::new();
    let mut alarms = BTreeSet::new();
    for (name, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let name = name.as_str().unwrap().to_owned();
        let p = &resource["Properties"];
        assert_eq!(
            text(&p["OKActions"]),
            "!Ref AlarmTopic",
            "{name}: OKActions"
        );
        // Lambda throttles only ever by this stack's functions' names.
        if text(&p["MetricName"]) == "Throttles" {
            panic!("{name}: throttles of the whole account");
        }
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            // A conditional query (`!If [cond, query, NoValue]`): the query.
            let m = match m {
                Value::Tagged(tagged) if tagged.tag == "!If" => tagged.value[1].clone(),
                m => m.clone(),
            };
            let metric = &m["MetricStat"]["Metric"];
            if text(&metric["MetricName"]) == "Throttles" {
                let dimension = &metric["Dimensions"][0];
                assert_eq!(dimension["Name"], "FunctionName", "{name}");
                throttled.insert(text(&dimension["Value"]).replace("!Ref ", ""));
            }
        }
        alarms.insert(name);
    }
    assert_eq!(
        throttled, functions,
        "a throttles alarm covers every function, by name"
    );
    // Callbacks refused (a wrong callback URL leaves every push pending) and secrets not
    // refreshed (a rotation not taking effect) page too.
    let callbacks = &t["Resources"]["CallbacksUnauthorizedAlarm"]["Properties"];
    assert_eq!(callbacks["MetricName"], "Callbacks");
    assert_eq!(callbacks["Dimensions"][0]["Value"], "401");
    let secrets = &t["Resources"]["SecretsRefreshAlarm"]["Properties"];
    assert_eq!(
        secrets["MetricName"],
        additional_factors::metrics::Metric::SecretsRefreshFailures.name()
    );
    // Log groups outlive the stack (an incident's evidence survives a teardown).
    for (name, resource) in resources {
        if resource["Type"] == "AWS::Logs::LogGroup" {
            assert_eq!(resource["DeletionPolicy"], "Retain", "{name:?}");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{name:?}");
        }
    }
    // The simulators are deployed only where a sandbox programme can exist; production says
    // so in samconfig.toml.
    for (name, resource) in resources {
        let is_simulator = resource["Type"] == "AWS::Serverless::Function"
            && resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .is_some_and(|b| b.starts_with("simulate-"));
        if is_simulator {
            assert_eq!(resource["Condition"], "HasSandboxSimulators", "{name:?}");
        }
    }
    let config = load_text("samconfig.toml");
    assert!(config.contains(r#"SandboxSimulators=\"disabled\""#));
    // Reserved concurrency cannot take the account's pool: at most 35 for each function, and
    // what production reserves leaves the 100 the account must keep unreserved, and more.
    let pattern = t["Parameters"]["ReservedConcurrency"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(pattern, "^([1-9]|[1-2][0-9]|3[0-5])?$");
    assert!(
        functions.len() * 35 <= 1_000 - 100,
        "{} functions",
        functions.len()
    );
    let prod: usize = config
        .split(r#"ReservedConcurrency=\""#)
        .nth(1)
        .and_then(|rest| rest.split('\\').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        prod * functions.len() <= 500,
        "prod reserves {prod} x {}",
        functions.len()
    );
    // The placeholder issuer in samconfig.toml is refused by the parameter's pattern.
    let issuer = t["Parameters"]["TokenIssuer"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(issuer, r"^[^<>\s]+$");
    assert!(config.contains("<your identity service's iss>"));
    // `sam sync` builds with cargo-lambda as `sam build` does.
    let parsed: toml::Value = toml::from_str(&config).unwrap();
    for env in ["default", "prod"] {
        assert_eq!(
            parsed[env]["sync"]["parameters"]["beta_features"].as_bool(),
            Some(true),
            "{env}"
        );
    }
    assert!(alarms.contains("LambdaThrottlesAlarm"));
}

/// The repository stands alone: no file cites the team's notes outside it (issue 25, item
/// 5). The names are built here so this file does not cite them either.
#[test]
fn the_repository_cites_no_file_outside_it() {
    let outside: Vec<String> = [
        ["CONTRACT", ".md"],
        ["CONTRACT-", "CHALLENGES.md"],
        ["CONTRACT-", "BIOMETRIC.md"],
        ["TOOLING", ".md"],
        ["DESIGN-", "NOTES.md"],
        ["STYLE", ".md"],
        ["../", "shared/"],
    ]
    .iter()
    .map(|parts| parts.concat())
    .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack = vec![root.clone()];
    let mut read = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if ![".git", ".venv", "target", ".aws-sam", "node_modules"].contains(&name.as_str())
                {
                    stack.push(path);
                }
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            read += 1;
            for cited in &outside {
                assert!(
                    !text.contains(cited.as_str()),
                    "{} cites {cited}",
                    path.strip_prefix(&root).unwrap_or(&path).display()
                );
            }
        }
    }
    assert!(read > 100, "read {read} files");
}

/// Any identity provider by parameters alone: a JWKS URL (https), the audience's claim
/// (`client_id` for Cognito), and no HS256 secret named, fetched or readable when
/// `TokenSecretName` is empty; a deployment with neither key source is refused by a rule.
#[test]
fn any_identity_provider_is_wired_by_parameters_alone() {
    let t = load("template.yaml");
    let p = &t["Parameters"];
    assert_eq!(p["JwksUrl"]["Default"], "");
    let pattern = p["JwksUrl"]["AllowedPattern"].as_str().unwrap();
    assert_eq!(pattern, r"^(https://\S+)?$");
    let claims: Vec<&str> = p["TokenAudienceClaim"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(claims, ["aud", "client_id"]);
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(text(&env["JWT_JWKS_URL"]), "!Ref JwksUrl");
    assert_eq!(text(&env["JWT_AUDIENCE_CLAIM"]), "!Ref TokenAudienceClaim");
    let rule = text(&t["Rules"]["TokenKeys"]["Assertions"][0]["Assert"]);
    assert!(
        rule.contains("TokenSecretName") && rule.contains("JwksUrl"),
        "{rule}"
    );
    assert_eq!(
        text(&t["Conditions"]["HasTokenSecret"]),
        "!Not !Equals !Ref TokenSecretName,"
    );
    let mut named = 0;
    for (binary, resource) in t["Resources"].as_mapping().unwrap() {
        let variables = &resource["Properties"]["Environment"]["Variables"];
        if let Some(id) = variables.get("JWT_HS256_SECRET_ID") {
            named += 1;
            assert_eq!(
                text(id),
                "!If HasTokenSecret,!Ref TokenSecretName,",
                "{binary:?}"
            );
        }
    }
    assert_eq!(named, 20, "every function that verifies user tokens");
    for (binary, function) in functions(&t) {
        for statement in &function.statements {
            for resource in statement["Resource"].as_sequence().into_iter().flatten() {
                let arn = text(resource);
                if arn.contains("${TokenSecretName}") {
                    assert!(arn.starts_with("!If HasTokenSecret,"), "{binary}: {arn}");
                }
            }
        }
    }
}

/// The dashboard shows the business (SMS sent by country, refusals by limit, codes compared
/// right and wrong, challenge limits and pushes), for all programmes and for the one picked
/// in its Programme menu; its body is valid JSON once CloudFormation substitutes it.
#[test]
fn the_dashboard_shows_the_business_per_programme() {
    let t = load("template.yaml");
    let body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"].clone();
    let Value::Tagged(tagged) = body else {
        panic!("the body is a !Sub string")
    };
    let mut json = tagged.value.as_str().unwrap().to_owned();
    // What !Sub fills in.
    while let Some(start) = json.find("${") {
        let end = start + json[start..].find('}').unwrap();
        json.replace_range(start..=end, "X");
    }
    let dashboard: serde_json::Value = serde_json::from_str(&json).unwrap();
    let expressions: Vec<String> = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["properties"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|m| m[0]["expression"].as_str().map(str::to_owned))
        .collect();
    for metric in [
        "SUM(SmsSent)",
        "SUM(SmsRefused)",
        "SUM(CodesCompared)",
        "SUM(ChallengeLimitReached)",
        "SUM(PushRequests)",
    ] {
        let (all, one): (Vec<&String>, Vec<&String>) = expressions
            .iter()
            .filter(|e| e.contains(metric))
            .partition(|e| !e.contains("WHERE"));
        assert_eq!((all.len(), one.len()), (1, 1), "{metric}: {expressions:?}");
        assert!(one[0].contains("programme = '__programme__'"), "{}", one[0]);
    }
    assert!(expressions.iter().any(|e| e.contains("GROUP BY country")));
    assert!(expressions.iter().any(|e| e.contains("GROUP BY limit")));
    assert!(expressions.iter().any(|e| e.contains("GROUP BY result")));
    let variable = &dashboard["variables"][0];
    assert_eq!(variable["type"], "pattern");
    assert_eq!(variable["pattern"], "__programme__");
    assert_eq!(variable["populateFrom"], "programme");
    // The namespace the functions write their metric lines to.
    let namespace =
        text(&t["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"]);
    assert_eq!(namespace, "!Sub additional-factors/${Stage}");
}
