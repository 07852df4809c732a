//! What a route may reach. Each handler declares its ports as a struct (`ports!`): one field
//! per store role or adapter it uses, and nothing else is handed to it, so a handler cannot
//! call what its route does not declare. The same declaration gives `Ports::USES`, the list
//! the Lambda entry point builds clients from and the template test checks each function's
//! IAM policy against.

use crate::{
    app::{App, CallbackSignatureKey},
    events::EventPublisher,
    proof::{ProofKeys, ProofSigner, SandboxKey},
    push::{device::DevicePush, PushProvider},
    sms::SmsSender,
    store::{
        Callbacks, Codes, Counters, Devices, FactorReads, Payments, PushEnrolments, SmsEnrolments,
        StepUps, Unlinking,
    },
};

/// What reaching a port takes: a grant in the function's policy, or a secret it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The table (DynamoDB): one of the store's roles.
    Table,
    /// SMS to phone numbers (`sns:Publish`, phone numbers only).
    Sms,
    /// Lifecycle events (`sns:Publish` on the events topic).
    Events,
    /// The push provider (over HTTPS with its API key).
    PushProvider,
    /// The programme's own app through SNS mobile push (BIOMETRIC devices).
    DevicePush,
    /// Which platforms SNS mobile push is configured for (configuration, no call).
    DevicePlatforms,
    /// Live payment proofs' key (`kms:Sign` on the current key, `kms:GetPublicKey`).
    ProofSigner,
    /// The sandbox programmes' proof key only (the simulators; the sandbox JWKS).
    SandboxProofSigner,
    /// Both keys, each programme's proofs signed by its own (live or sandbox).
    ProofKeys,
    /// The key the push provider signs its callbacks with (no call to the provider).
    CallbackSignatureKey,
}

/// A port a handler can be handed, and where the `App` keeps it.
pub trait Reach {
    const PORT: Port;
    fn reach(app: &App) -> &Self;
}

/// A route's ports, as its handler receives them.
pub trait Ports<'a>: Send {
    /// The ports, one per field, in order.
    const USES: &'static [Port];
    fn reach(app: &'a App) -> Self;
}

/// Whether `uses` names `port` (usable in constants: `lambda` builds clients from it).
pub const fn uses(uses: &[Port], port: Port) -> bool {
    let mut rest = uses;
    while let [first, others @ ..] = rest {
        if *first as u8 == port as u8 {
            return true;
        }
        rest = others;
    }
    false
}

macro_rules! store_roles {
    ($($role:ident),* $(,)?) => {$(
        impl Reach for dyn $role {
            const PORT: Port = Port::Table;
            fn reach(app: &App) -> &Self {
                &*app.store
            }
        }
    )*};
}

store_roles!(
    FactorReads,
    SmsEnrolments,
    Codes,
    Counters,
    PushEnrolments,
    Unlinking,
    Callbacks,
    StepUps,
    Payments,
    Devices,
);

impl Reach for dyn SmsSender {
    const PORT: Port = Port::Sms;
    fn reach(app: &App) -> &Self {
        &*app.sms
    }
}

impl Reach for dyn EventPublisher {
    const PORT: Port = Port::Events;
    fn reach(app: &App) -> &Self {
        &*app.events
    }
}

impl Reach for dyn DevicePush {
    const PORT: Port = Port::DevicePush;
    fn reach(app: &App) -> &Self {
        &*app.device_push
    }
}

impl Reach for dyn crate::push::device::DevicePlatforms {
    const PORT: Port = Port::DevicePlatforms;
    fn reach(app: &App) -> &Self {
        &*app.device_push
    }
}

impl Reach for dyn PushProvider {
    const PORT: Port = Port::PushProvider;
    fn reach(app: &App) -> &Self {
        &*app.push
    }
}

impl Reach for dyn ProofSigner {
    const PORT: Port = Port::ProofSigner;
    fn reach(app: &App) -> &Self {
        &*app.proof_keys.live
    }
}

impl Reach for SandboxKey {
    const PORT: Port = Port::SandboxProofSigner;
    fn reach(app: &App) -> &Self {
        &app.proof_keys.sandbox
    }
}

impl Reach for ProofKeys {
    const PORT: Port = Port::ProofKeys;
    fn reach(app: &App) -> &Self {
        &app.proof_keys
    }
}

/// `None` where no push provider is configured: the callback route then answers 404.
impl Reach for Option<CallbackSignatureKey> {
    const PORT: Port = Port::CallbackSignatureKey;
    fn reach(app: &App) -> &Self {
        &app.callback_key
    }
}

/// Declares a route's ports: `ports! { pub struct Ports { store: dyn FactorReads } }` is a
/// struct of references to exactly those, built from the `App` by `Ports::reach`.
#[macro_export]
macro_rules! ports {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident: $port:ty),* $(,)? }) => {
        $(#[$meta])*
        pub struct $name<'a> {
            $(pub $field: &'a $port,)*
            _app: ::std::marker::PhantomData<&'a ()>,
        }

        impl<'a> $crate::handlers::ports::Ports<'a> for $name<'a> {
            const USES: &'static [$crate::handlers::ports::Port] =
                &[$(<$port as $crate::handlers::ports::Reach>::PORT),*];
            fn reach(#[allow(unused_variables)] app: &'a $crate::app::App) -> Self {
                Self {
                    $($field: <$port as $crate::handlers::ports::Reach>::reach(app),)*
                    _app: ::std::marker::PhantomData,
                }
            }
        }
    };
}
