#!/usr/bin/env python3
"""Writes events/: API Gateway (payload 2.0) events for `sam local invoke`, one per
route and interesting case, numbered in the order that makes a scenario on one fresh table:
list, enrol and verify an SMS code, add and approve a push factor, unlink it.

The tokens are signed with the development secret of events/env.json and expire in 2100.
Run it again after changing env.json:  python3 scripts/make-events.py
The tests feed every file through the matching function's handler (tests/api/events.rs).
"""
import base64, hashlib, hmac, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = os.path.join(HERE, "..", "events")
ENV = json.load(open(os.path.join(EVENTS, "env.json")))["Parameters"]
API_KEY = "events-sandbox-api-key"
PHONE = "+447700900123"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(mfa=False, phone=PHONE, sid=None):
    claims = {"sub": "events-user", "programme_id": "events-sandbox", "iss": ENV["JWT_ISSUER"],
              "aud": ENV["JWT_AUDIENCE"], "exp": 4102444800,
              # No token may live longer than 24 hours (exp - iat): a file made once cannot
              # hold a fresh token, so it says it was issued an hour before its expiry.
              "iat": 4102444800 - 3600}
    if sid:
        claims["sid"] = sid
    if phone:
        claims["phone_number"] = phone
    if mfa:
        # Step-up counts while auth_time is at most 15 minutes old; a file made once cannot
        # hold a fresh one, so it stands at the token's expiry (a time ahead of the
        # service's clock counts as fresh, and exp still bounds the token).
        claims["amr"] = ["pwd", "mfa"]
        claims["auth_time"] = claims["exp"]
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    sig = hmac.new(ENV["JWT_HS256_SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def event(method, template, channel=None, headers=None, body=None, challenge=None):
    path = template.replace("{channel}", channel) if channel else template
    path = path.replace("{id}", challenge) if challenge else path
    route_key = f"{method} {template}"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "sam-local-invoke", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "local.execute-api.localhost",
            "domainPrefix": "local", "requestId": "local-request", "routeKey": route_key, "stage": "$default",
            "time": "29/Nov/2026:10:00:00 +0000", "timeEpoch": 1795946400000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10",
                     "userAgent": "sam-local-invoke"},
        },
        **({"pathParameters": {**({"channel": channel} if channel else {}),
                                **({"id": challenge} if challenge else {})}}
           if channel or challenge else {}),
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


def creds(mfa=False, phone=PHONE, sid=None):
    return {"api-key": API_KEY, "authorization": f"Bearer {token(mfa, phone, sid)}"}


LIST, OTP, VERIFY = "/authentication_factors", "/authentication_factors/otp/{channel}", "/authentication_factors/otp/{channel}/verify"
PUSH, ACCEPT = "/authentication_factors/push/{channel}", "/simulate/authentication_factors/push/{channel}/accept"
REJECT = "/simulate/authentication_factors/push/{channel}/reject"
CASES = [
    ("list-factors.400-no-api-key", event("GET", LIST, headers={"authorization": creds()["authorization"]})),
    ("list-factors.401-no-token", event("GET", LIST, headers={"api-key": API_KEY})),
    ("list-factors.200-empty", event("GET", LIST, headers=creds())),
    ("enrol-sms-otp.400-channel", event("POST", OTP, "EMAIL", creds())),
    ("enrol-sms-otp.409-no-phone", event("POST", OTP, "SMS", creds(phone=None))),
    ("enrol-sms-otp.204", event("POST", OTP, "SMS", {**creds(), "idempotency-ref": "events-enrol-1"})),
    ("verify-sms-otp.400-code-size", event("POST", VERIFY, "SMS", creds(), '{"verificationCode": "123"}')),
    ("verify-sms-otp.409-wrong-code", event("POST", VERIFY, "SMS", creds(), '{"verificationCode": "000000"}')),
    ("verify-sms-otp.204", event("POST", VERIFY, "SMS", creds(), '{"verificationCode": "123456"}')),
    ("list-factors.200-sms-active", event("GET", LIST, headers=creds())),
    ("enrol-push.403-step-up", event("POST", PUSH, "AUTHY", creds())),
    ("enrol-push.204", event("POST", PUSH, "AUTHY", creds(mfa=True))),
    ("simulate-push.204-accept", event("POST", ACCEPT, "AUTHY", creds())),
    ("simulate-push.409-nothing-pending", event("POST", REJECT, "AUTHY", creds())),
    ("unlink-push.400-channel", event("DELETE", PUSH, "SMS", creds(mfa=True))),
    ("unlink-push.403-step-up", event("DELETE", PUSH, "AUTHY", creds())),
    ("unlink-push.204", event("DELETE", PUSH, "AUTHY", creds(mfa=True))),
    ("unlink-push.409-not-registered", event("DELETE", PUSH, "AUTHY", creds(mfa=True))),
]

def authy_signed(body, nonce="1795946400"):
    """Signs a callback as Authy documents it (see shared/src/push/authy_signature.rs)."""
    import urllib.parse
    pairs = []

    def flatten(key, value):
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{key}[{k}]" if key else k, v)
        elif isinstance(value, list):
            for v in value:
                flatten(f"{key}[]", v)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif value is None:
            pairs.append((key, ""))
        else:
            pairs.append((key, str(value)))

    flatten("", body)
    enc = lambda t: urllib.parse.quote(t, safe="-._~").replace("%20", "+")
    params = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in pairs))
    data = f"{nonce}|POST|{ENV['AUTHY_CALLBACK_URL']}|{params}"
    sig = base64.b64encode(hmac.new(ENV["AUTHY_API_KEY"].encode(), data.encode(), hashlib.sha256).digest()).decode()
    return {"x-authy-signature": sig, "x-authy-signature-nonce": nonce}


CALLBACK = {"uuid": "no-such-request", "status": "approved", "authy_id": 42, "callback_action": "approval_request_status"}
CASES += [
    ("authy-callback.401-unsigned", event("POST", "/webhooks/authy", body=json.dumps(CALLBACK))),
    # Authy's nonce is its timestamp and must be within 5 minutes of the service's clock: a
    # file made once cannot hold a fresh one, so this callback is correctly signed but stale
    # (401) wherever and whenever it is invoked. A 200 needs a callback signed at invoke time
    # (tests/api/authy.rs signs them so).
    ("authy-callback.401-stale-nonce",
     event("POST", "/webhooks/authy", headers=authy_signed(CALLBACK, nonce="1764410400"), body=json.dumps(CALLBACK))),
]

# Step-up (README, *Step-up*): the SMS factor is ACTIVE since verify-sms-otp.204, the
# Authy factor unlinked since unlink-push.204. A push challenge's id is random, so its
# reader and simulator have only their 404s here.
STEP_OTP, STEP_VERIFY = "/stepup/challenges/otp/{channel}", "/stepup/challenges/otp/{channel}/verify"
STEP_PUSH, STEP_GET = "/stepup/challenges/push/{channel}", "/stepup/challenges/{id}"
STEP_ACCEPT = "/simulate/stepup/challenges/{id}/accept"
SESSION = creds(sid="events-session")
CASES += [
    ("step-up-sms.400-channel", event("POST", STEP_OTP, "EMAIL", SESSION)),
    ("step-up-sms.204", event("POST", STEP_OTP, "SMS", SESSION)),
    ("verify-step-up-sms.409-wrong-code", event("POST", STEP_VERIFY, "SMS", SESSION, '{"verificationCode": "000000"}')),
    ("verify-step-up-sms.204", event("POST", STEP_VERIFY, "SMS", SESSION, '{"verificationCode": "123456"}')),
    ("step-up-push.409-not-registered", event("POST", STEP_PUSH, "AUTHY", SESSION)),
    ("get-step-up-challenge.404-unknown", event("GET", STEP_GET, headers=SESSION, challenge="no-such-challenge")),
    ("simulate-step-up.404-unknown", event("POST", STEP_ACCEPT, headers=SESSION, challenge="no-such-challenge")),
]

# Payment challenges: the SMS factor is ACTIVE, the Authy factor gone. A challenge's id is
# random, so its verify, reader and simulator ship their 404s; the JWKS needs no credentials.
PAY_OTP, PAY_PUSH = "/challenges/otp/{channel}", "/challenges/push/{channel}"
PAY_VERIFY, PAY_GET = "/challenges/{scaChallengeId}/otp/{channel}/verify", "/challenges/{scaChallengeId}"
PAY_ACCEPT = "/simulate/challenges/{scaChallengeId}/accept"
PAYMENT = json.dumps({"reference": "events-pay-1", "amount": {"currency": "EUR", "value": 12550},
                      "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}})


def payment_event(method, template, headers=None, body=None, channel=None, challenge=None):
    e = event(method, template, channel, headers, body)
    path = template.replace("{channel}", channel or "").replace("{scaChallengeId}", challenge or "")
    e["rawPath"] = e["requestContext"]["http"]["path"] = path
    params = {k: v for k, v in (("channel", channel), ("scaChallengeId", challenge)) if v}
    if params:
        e["pathParameters"] = params
    return e


CASES += [
    ("payment-sms.400-invalid", payment_event("POST", PAY_OTP, creds(), '{"reference": ""}', "SMS")),
    ("payment-sms.200", payment_event("POST", PAY_OTP, creds(), PAYMENT, "SMS")),
    ("payment-sms.409-reference-pending", payment_event("POST", PAY_OTP, creds(), PAYMENT, "SMS")),
    ("verify-payment-sms.404-unknown", payment_event("POST", PAY_VERIFY, creds(), '{"verificationCode": "123456"}', "SMS", "no-such-challenge")),
    ("payment-push.409-not-registered", payment_event("POST", PAY_PUSH, creds(), PAYMENT, "AUTHY")),
    ("get-payment-challenge.404-unknown", payment_event("GET", PAY_GET, creds(), challenge="no-such-challenge")),
    ("jwks.200", event("GET", "/.well-known/jwks.json")),
    ("simulate-payment.404-unknown", payment_event("POST", PAY_ACCEPT, creds(), challenge="no-such-challenge")),
    ("sandbox-jwks.200", event("GET", "/.well-known/sandbox-jwks.json")),
    # BIOMETRIC step two with no enrolment started: 409 STATE_INVALID (a device's signature
    # needs a signing input the API made; the walk-through's device CLI makes one).
    ("verify-biometric.409-nothing-pending", event("POST", "/authentication_factors/push/{channel}/verify", "BIOMETRIC",
        creds(), json.dumps({"signature": "A" * 86}))),
    # A new push token for a device never enrolled: 409 CHANNEL_NOT_REGISTERED.
    ("update-device-push.409-not-registered", event("PUT", "/authentication_factors/push/{channel}", "BIOMETRIC",
        creds(), json.dumps({"pushToken": "new-token", "signedAt": 4102441200, "signature": "A" * 86}))),
    # The device's challenges with no BIOMETRIC factor: none; an answer to an unknown one: 404.
    ("list-device-challenges.200-empty", event("GET", "/authentication_factors/push/{channel}/challenges", "BIOMETRIC",
        creds())),
    ("answer-device-challenge.404-unknown", event("POST", "/authentication_factors/push/{channel}/challenges/{id}", "BIOMETRIC",
        creds(), json.dumps({"decision": "APPROVE", "signature": "A" * 86}), "no-such-challenge")),
]

for name in os.listdir(EVENTS):
    if name[:2].isdigit():
        os.remove(os.path.join(EVENTS, name))
for i, (name, body) in enumerate(CASES, 1):
    with open(os.path.join(EVENTS, f"{i:02d}-{name}.json"), "w") as f:
        json.dump(body, f, indent=2)
        f.write("\n")
print(f"wrote {len(CASES)} events")
