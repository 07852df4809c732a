//! The files of `events/` (what `sam local invoke <Function> -e events/<file>` takes) fed, in
//! order, through the matching function's handler with `lambda_http`'s own event parser, on
//! one store configured as `events/env.json` says: so the files cannot rot.

use additional_factors::store::Seeding;
use std::sync::Arc;

use additional_factors::{
    app::{App, CallbackSignatureKey},
    auth::TokenVerifier,
    clock::FixedClock,
    domain::{crypto::api_key_hash, programme::Programme},
    http::{handle, router::Route},
    push::fake::FakePushProvider,
    sms::recording::RecordingSmsSender,
    store::memory::MemoryStore,
};
use serde_json::Value;

fn route_of(function: &str, path: &str) -> Route {
    match function {
        "list-factors" => Route::ListFactors,
        "enrol-sms-otp" => Route::EnrolSmsOtp,
        "verify-sms-otp" => Route::VerifySmsOtp,
        "enrol-push" => Route::EnrolPush,
        "unlink-push" => Route::UnlinkPush,
        "verify-biometric" => Route::VerifyBiometric,
        "list-device-challenges" => Route::ListDeviceChallenges,
        "answer-device-challenge" => Route::AnswerDeviceChallenge,
        "update-device-push" => Route::UpdateDevicePush,
        "simulate-push" if path.ends_with("/reject") => Route::SimulatePushReject,
        "simulate-push" => Route::SimulatePushAccept,
        "authy-callback" => Route::AuthyCallback,
        "step-up-sms" => Route::StepUpSms,
        "verify-step-up-sms" => Route::VerifyStepUpSms,
        "step-up-push" => Route::StepUpPush,
        "get-step-up-challenge" => Route::GetStepUpChallenge,
        "simulate-step-up" if path.ends_with("/reject") => Route::SimulateStepUpReject,
        "simulate-step-up" => Route::SimulateStepUpAccept,
        "payment-sms" => Route::PaymentSms,
        "verify-payment-sms" => Route::VerifyPaymentSms,
        "payment-push" => Route::PaymentPush,
        "get-payment-challenge" => Route::GetPaymentChallenge,
        "jwks" => Route::Jwks,
        "sandbox-jwks" => Route::SandboxJwks,
        "simulate-payment" if path.ends_with("/reject") => Route::SimulatePaymentReject,
        "simulate-payment" => Route::SimulatePaymentAccept,
        other => panic!("no function {other}"),
    }
}

#[tokio::test]
async fn every_event_file_gets_the_status_in_its_name() {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/env.json")).unwrap()).unwrap();
    let env = &env["Parameters"];
    let store = Arc::new(MemoryStore::new());
    store
        .put_programme(
            &api_key_hash("events-sandbox-api-key"),
            &Programme::new("events-sandbox", true),
        )
        .await
        .unwrap();
    let tokens = TokenVerifier::new(
        Some(env["JWT_HS256_SECRET"].as_str().unwrap().as_bytes()),
        None,
        env["JWT_ISSUER"].as_str().unwrap(),
        env["JWT_AUDIENCE"].as_str().unwrap(),
    )
    .unwrap();
    let app = App::builder(store)
        .sms(Arc::new(RecordingSmsSender::new()))
        .push(Arc::new(FakePushProvider::new()))
        // The events' own time: the Authy callback is signed with it as its nonce.
        .clock(Arc::new(FixedClock::new(1_795_946_405)))
        .tokens(tokens)
        .otp_secret(env["OTP_HMAC_SECRET"].as_str().unwrap().as_bytes())
        .callback_key(Some(CallbackSignatureKey {
            api_key: env["AUTHY_API_KEY"].as_str().unwrap().to_owned(),
            url: env["AUTHY_CALLBACK_URL"].as_str().unwrap().to_owned(),
        }))
        .build()
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.as_bytes()[0].is_ascii_digit())
        .collect();
    names.sort();
    assert!(names.len() >= 27);
    // Every deployed function has at least one event.
    let functions: std::collections::BTreeSet<&str> = names
        .iter()
        .map(|n| n.split_once('-').unwrap().1.split_once('.').unwrap().0)
        .collect();
    let dir_functions = std::fs::read_dir(format!("{dir}/../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    for function in &dir_functions {
        assert!(
            functions.contains(function.as_str()),
            "{function} has no event"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &names {
        // NN-<function>.<status>[-what].json
        let stem = name.trim_end_matches(".json");
        let (function, outcome) = stem.split_once('-').unwrap().1.split_once('.').unwrap();
        let status: u16 = outcome[..3].parse().unwrap();
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let route = route_of(function, raw["rawPath"].as_str().unwrap());
        assert_eq!(
            raw["routeKey"],
            format!("{} {}", route.method(), route.path_template()),
            "{name}"
        );
        let response = handle(&app, route, request).await;
        assert_eq!(
            response.status().as_u16(),
            status,
            "{name}: {:?}",
            response.body()
        );
        seen.insert((function.to_owned(), status / 100));
    }
    // Every function has a success and an error case.
    for function in [
        "list-factors",
        "enrol-sms-otp",
        "verify-sms-otp",
        "enrol-push",
        "unlink-push",
        "simulate-push",
        // authy-callback: no static file can hold a fresh signature nonce (its success is
        // tested with callbacks signed at send time, tests/api/authy.rs).
        "step-up-sms",
        "verify-step-up-sms",
        "payment-sms",
    ] {
        assert!(
            seen.contains(&(function.to_owned(), 2)),
            "{function} has no success event"
        );
        assert!(
            seen.iter().any(|(f, s)| f == function && *s == 4),
            "{function} has no error event"
        );
    }
}
