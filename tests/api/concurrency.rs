//! The limits hold under real concurrency (a multi-threaded runtime, all requests at once).

use std::sync::Arc;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_wrong_codes_compare_at_most_five() {
    let t = Arc::new(TestApp::new().await);
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let bad = wrong(&t.last_code(PHONE));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (t, token, bad) = (t.clone(), token.clone(), bad.clone());
            tokio::spawn(async move {
                t.send(
                    Req::post(VERIFY)
                        .auth(LIVE_KEY, &token)
                        .json(code_body(&bad)),
                )
                .await
            })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 409);
        codes.push(r.error_code().to_owned());
    }
    codes.sort();
    let count = |c: &str| codes.iter().filter(|x| *x == c).count();
    assert_eq!(t.app.context.metrics.codes_compared(), 5);
    assert_eq!(count("VERIFICATION_CODE_INVALID"), 3);
    assert_eq!(count("ONE_CHALLENGE_LIMIT_REMAINING"), 1);
    assert_eq!(count("CHALLENGE_LIMIT_EXCEEDED"), 1);
    assert_eq!(count("STATE_INVALID"), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_enrolments_with_one_reference_send_one_sms() {
    let t = Arc::new(TestApp::new().await);
    let token = t.token("live", "u1");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (t, token) = (t.clone(), token.clone());
            tokio::spawn(async move {
                t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("once"))
                    .await
            })
        })
        .collect();
    let mut ran = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match (r.status, r.header("idempotent-replayed")) {
            (204, None) => ran += 1,
            (204, Some("true")) => {}
            (409, None) => assert_eq!(r.error_code(), "IDEMPOTENT_REQUEST_IN_PROGRESS"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ran, 1);
    assert_eq!(t.sms.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_right_code_sent_twice_at_once_activates_once() {
    let t = Arc::new(TestApp::new().await);
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (t, token, code) = (t.clone(), token.clone(), code.clone());
            tokio::spawn(async move {
                t.send(
                    Req::post(VERIFY)
                        .auth(LIVE_KEY, &token)
                        .json(code_body(&code)),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == 204 {
            ok += 1;
        } else {
            assert!(
                ["STATE_INVALID", "CHANNEL_ALREADY_REGISTERED"].contains(&r.error_code()),
                "{}",
                r.raw
            );
        }
    }
    assert_eq!(ok, 1);
}
