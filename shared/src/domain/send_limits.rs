//! Send limits: fixed windows aligned to the epoch (an hour window starts on the hour).
//!
//! Each limit is a counter item keyed by what it limits and by its window. The store consumes
//! every counter of a request in the same atomic write as the state change that sends
//! something, each with the condition `count < limit`; if any condition fails nothing is
//! consumed. Counters with large caps (the programme's, a country's, the deployment's budget)
//! are spread over shards, so one busy programme does not make a single hot partition.
//!
//! Sandbox requests count in counters of their own (every key is prefixed), so a sandbox
//! never spends a live user's or number's quota; the deployment's SMS budget counts live
//! sends only (sandboxes send nothing).

use std::collections::BTreeMap;

pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// The send limits of a programme (defaults from the contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLimits {
    pub per_user_per_hour: u32,
    pub per_user_per_day: u32,
    pub per_number_per_day: u32,
    pub per_programme_per_day: u32,
    /// SMS per day to one country calling code, unless `perCountryPerDayOverrides` names it.
    pub per_country_per_day: u32,
    /// Per country calling code (`"44"`): its own daily SMS limit.
    pub per_country_per_day_overrides: BTreeMap<String, u32>,
    /// Push requests per user per hour (`CHALLENGE_LIMIT_EXCEEDED`, a 409).
    pub push_per_user_per_hour: u32,
    /// Push enrolments per destination number per day, across users and programmes (409).
    pub push_per_number_per_day: u32,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            per_user_per_hour: 5,
            per_user_per_day: 20,
            per_number_per_day: 10,
            per_programme_per_day: 10_000,
            per_country_per_day: 1_000,
            per_country_per_day_overrides: BTreeMap::new(),
            push_per_user_per_hour: 5,
            push_per_number_per_day: 10,
        }
    }
}

impl SendLimits {
    /// The daily SMS limit for one country calling code.
    pub fn country_per_day(&self, country_code: &str) -> u32 {
        self.per_country_per_day_overrides
            .iter()
            .find(|(code, _)| code.trim_start_matches('+') == country_code)
            .map_or(self.per_country_per_day, |(_, limit)| *limit)
    }
}

/// The deployment's SMS budget across every programme (live sends only): what one stack may
/// spend, whatever its tenants do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsBudget {
    pub per_hour: u32,
    pub per_day: u32,
}

impl Default for SmsBudget {
    fn default() -> Self {
        Self {
            per_hour: 2_000,
            per_day: 20_000,
        }
    }
}

/// Which family a counter belongs to: `x-ratelimit-limit` lists every limit of the family hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    UserSms,
    NumberSms,
    ProgrammeSms,
    CountrySms,
    DeploymentSms,
    UserPush,
    NumberPush,
}

impl LimitKind {
    /// A stable name (the `limit` dimension of the `SmsRefused` metric).
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::UserSms => "user",
            LimitKind::NumberSms => "number",
            LimitKind::ProgrammeSms => "programme",
            LimitKind::CountrySms => "country",
            LimitKind::DeploymentSms => "deployment",
            LimitKind::UserPush => "user_push",
            LimitKind::NumberPush => "number_push",
        }
    }
}

/// Whose sends a counter counts. The store derives its key from this (and from the window):
/// the domain names counters, it does not format keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CounterSubject {
    UserSms {
        programme_id: String,
        credential_id: String,
    },
    NumberSms {
        phone_hash: String,
    },
    /// One shard of a programme's daily SMS.
    ProgrammeSms {
        programme_id: String,
        shard: u32,
    },
    /// One shard of a programme's daily SMS to one country calling code.
    CountrySms {
        programme_id: String,
        country_code: String,
        shard: u32,
    },
    /// One shard of the deployment's SMS budget.
    DeploymentSms {
        shard: u32,
    },
    UserPush {
        programme_id: String,
        credential_id: String,
    },
    NumberPush {
        phone_hash: String,
    },
}

impl CounterSubject {
    pub fn kind(&self) -> LimitKind {
        match self {
            CounterSubject::UserSms { .. } => LimitKind::UserSms,
            CounterSubject::NumberSms { .. } => LimitKind::NumberSms,
            CounterSubject::ProgrammeSms { .. } => LimitKind::ProgrammeSms,
            CounterSubject::CountrySms { .. } => LimitKind::CountrySms,
            CounterSubject::DeploymentSms { .. } => LimitKind::DeploymentSms,
            CounterSubject::UserPush { .. } => LimitKind::UserPush,
            CounterSubject::NumberPush { .. } => LimitKind::NumberPush,
        }
    }
}

/// Which counter: whose, in which window, and whether it counts sandbox sends (sandboxes
/// count apart from live traffic).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterId {
    pub sandbox: bool,
    pub subject: CounterSubject,
    pub window_secs: i64,
    /// The window's number since the epoch (`now / window_secs`).
    pub window_index: i64,
}

/// One counter a request consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCounter {
    pub id: CounterId,
    /// What this counter item holds (a shard's share of a sharded limit).
    pub limit: u32,
    /// The limit as configured (what a 429 reports).
    pub total: u32,
    pub window_secs: i64,
    /// When the window ends (epoch seconds): the counter's reset and its TTL.
    pub window_end: i64,
}

impl LimitCounter {
    pub fn kind(&self) -> LimitKind {
        self.id.subject.kind()
    }
}

fn counter(
    sandbox: bool,
    subject: CounterSubject,
    limit: u32,
    window_secs: i64,
    now: i64,
) -> LimitCounter {
    let index = now.div_euclid(window_secs);
    LimitCounter {
        id: CounterId {
            sandbox,
            subject,
            window_secs,
            window_index: index,
        },
        limit,
        total: limit,
        window_secs,
        window_end: (index + 1) * window_secs,
    }
}

/// How many shards a large cap is spread over: one below 2,000 (so small caps stay exact),
/// up to 8 for large ones.
fn shards(cap: u32) -> u32 {
    (cap / 1_000).clamp(1, 8)
}

/// One shard of a sharded counter: an equal part of the cap.
fn sharded(
    sandbox: bool,
    subject: impl FnOnce(u32) -> CounterSubject,
    cap: u32,
    window_secs: i64,
    now: i64,
    shard_pick: u32,
) -> LimitCounter {
    let count = shards(cap);
    let shard = shard_pick % count;
    let share = cap / count + u32::from(shard < cap % count);
    LimitCounter {
        total: cap,
        ..counter(sandbox, subject(shard), share, window_secs, now)
    }
}

/// Who sends: the programme's user, and whether the programme is a sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub programme_id: &'a str,
    pub credential_id: &'a str,
    pub sandbox: bool,
}

/// Where one SMS goes.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The keyed hash of the number.
    pub phone_hash: &'a str,
    pub country_code: &'a str,
}

/// The counters one SMS send consumes. `shard_pick` is any random number.
pub fn sms_counters(
    limits: &SendLimits,
    budget: &SmsBudget,
    sender: &Sender,
    to: &Destination,
    now: i64,
    shard_pick: u32,
) -> Vec<LimitCounter> {
    let sandbox = sender.sandbox;
    let programme_id = || sender.programme_id.to_owned();
    let user = || CounterSubject::UserSms {
        programme_id: programme_id(),
        credential_id: sender.credential_id.to_owned(),
    };
    let mut counters = vec![
        counter(sandbox, user(), limits.per_user_per_hour, HOUR, now),
        counter(sandbox, user(), limits.per_user_per_day, DAY, now),
        counter(
            sandbox,
            CounterSubject::NumberSms {
                phone_hash: to.phone_hash.to_owned(),
            },
            limits.per_number_per_day,
            DAY,
            now,
        ),
        sharded(
            sandbox,
            |shard| CounterSubject::ProgrammeSms {
                programme_id: programme_id(),
                shard,
            },
            limits.per_programme_per_day,
            DAY,
            now,
            shard_pick,
        ),
        sharded(
            sandbox,
            |shard| CounterSubject::CountrySms {
                programme_id: programme_id(),
                country_code: to.country_code.to_owned(),
                shard,
            },
            limits.country_per_day(to.country_code),
            DAY,
            now,
            shard_pick,
        ),
    ];
    if !sandbox {
        for (cap, window) in [(budget.per_hour, HOUR), (budget.per_day, DAY)] {
            counters.push(sharded(
                sandbox,
                |shard| CounterSubject::DeploymentSms { shard },
                cap,
                window,
                now,
                shard_pick,
            ));
        }
    }
    counters
}

/// The counters one push request consumes: the user's per hour, the number's per day.
pub fn push_counters(
    limits: &SendLimits,
    sender: &Sender,
    phone_hash: &str,
    now: i64,
) -> Vec<LimitCounter> {
    vec![
        counter(
            sender.sandbox,
            CounterSubject::UserPush {
                programme_id: sender.programme_id.to_owned(),
                credential_id: sender.credential_id.to_owned(),
            },
            limits.push_per_user_per_hour,
            HOUR,
            now,
        ),
        counter(
            sender.sandbox,
            CounterSubject::NumberPush {
                phone_hash: phone_hash.to_owned(),
            },
            limits.push_per_number_per_day,
            DAY,
            now,
        ),
    ]
}

/// What a 429 tells: the limit hit, every limit of its kind with its window, and the reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// `x-ratelimit-limit`, e.g. `5, 5;w=3600, 20;w=86400`.
    pub limit_header: String,
    /// Seconds until the window that was hit resets (`x-ratelimit-reset`, `Retry-After`).
    pub reset_secs: i64,
}

/// Builds the 429 from the counters that were full. Where several were, the one that resets
/// last is reported: the request cannot succeed before it resets.
pub fn rate_limited(all: &[LimitCounter], hit: &[&LimitCounter], now: i64) -> Option<RateLimited> {
    let worst = hit.iter().max_by_key(|c| c.window_end)?;
    let family: Vec<String> = all
        .iter()
        .filter(|c| c.kind() == worst.kind())
        .map(|c| format!("{};w={}", c.total, c.window_secs))
        .collect();
    Some(RateLimited {
        limit_header: format!("{}, {}", worst.total, family.join(", ")),
        reset_secs: (worst.window_end - now).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: Sender = Sender {
        programme_id: "p",
        credential_id: "u",
        sandbox: false,
    };
    const TO: Destination = Destination {
        phone_hash: "h",
        country_code: "44",
    };

    fn sms(limits: &SendLimits, sender: &Sender, now: i64, shard_pick: u32) -> Vec<LimitCounter> {
        sms_counters(limits, &SmsBudget::default(), sender, &TO, now, shard_pick)
    }

    fn of_kind(counters: &[LimitCounter], kind: LimitKind) -> Vec<&LimitCounter> {
        counters.iter().filter(|c| c.kind() == kind).collect()
    }

    #[test]
    fn windows_align_to_the_epoch() {
        let subject = CounterSubject::NumberSms {
            phone_hash: "h".into(),
        };
        let c = counter(false, subject.clone(), 5, HOUR, 7_200 + 59);
        assert_eq!(c.window_end, 10_800);
        assert_eq!(c.id.window_index, 2);
        let d = counter(false, subject, 5, HOUR, 10_800);
        assert_eq!(d.window_end, 14_400);
    }

    #[test]
    fn header_names_the_hit_and_its_family() {
        let all = sms(&SendLimits::default(), &LIVE, 1_000, 0);
        let hourly = all.first();
        let hit: Vec<&LimitCounter> = hourly.into_iter().collect();
        let limited = rate_limited(&all, &hit, 1_000);
        assert_eq!(
            limited,
            Some(RateLimited {
                limit_header: "5, 5;w=3600, 20;w=86400".into(),
                reset_secs: 2_600
            })
        );
        let number = of_kind(&all, LimitKind::NumberSms);
        assert_eq!(
            rate_limited(&all, &number, 1_000).map(|r| r.limit_header),
            Some("10, 10;w=86400".into())
        );
        // A sharded limit reports its configured total, not a shard's share.
        let budget = of_kind(&all, LimitKind::DeploymentSms);
        assert_eq!(
            rate_limited(&all, &budget[..1], 1_000).map(|r| r.limit_header),
            Some("2000, 2000;w=3600, 20000;w=86400".into())
        );
    }

    #[test]
    fn when_hour_and_day_are_both_full_the_day_is_reported() {
        let all = sms(&SendLimits::default(), &LIVE, 1_000, 0);
        let hit: Vec<&LimitCounter> = all.iter().take(2).collect();
        assert_eq!(
            rate_limited(&all, &hit, 1_000).map(|r| r.reset_secs),
            Some(85_400)
        );
    }

    #[test]
    fn programme_cap_is_exact_when_small_and_split_when_large() {
        let small = SendLimits {
            per_programme_per_day: 3,
            ..SendLimits::default()
        };
        let counters = sms(&small, &LIVE, 0, 7);
        assert_eq!(of_kind(&counters, LimitKind::ProgrammeSms)[0].limit, 3);
        let large = SendLimits::default();
        let total: u32 = (0..8)
            .map(|s| of_kind(&sms(&large, &LIVE, 0, s), LimitKind::ProgrammeSms)[0].limit)
            .sum();
        assert_eq!(total, 10_000);
    }

    #[test]
    fn a_country_has_its_own_daily_limit_and_overrides() {
        let mut limits = SendLimits::default();
        limits.per_country_per_day_overrides.insert("+33".into(), 7);
        assert_eq!(limits.country_per_day("44"), 1_000);
        assert_eq!(limits.country_per_day("33"), 7);
        let counters = sms(&limits, &LIVE, 0, 0);
        let country = of_kind(&counters, LimitKind::CountrySms);
        assert_eq!(country.len(), 1);
        assert!(matches!(
            &country[0].id.subject,
            CounterSubject::CountrySms { programme_id, country_code, .. }
                if programme_id == "p" && country_code == "44"
        ));
    }

    #[test]
    fn sandbox_counts_apart_and_spends_no_budget() {
        let sandbox = Sender {
            sandbox: true,
            ..LIVE
        };
        let live = sms(&SendLimits::default(), &LIVE, 0, 0);
        let sbx = sms(&SendLimits::default(), &sandbox, 0, 0);
        assert!(of_kind(&sbx, LimitKind::DeploymentSms).is_empty());
        assert_eq!(of_kind(&live, LimitKind::DeploymentSms).len(), 2);
        for c in &sbx {
            assert!(c.id.sandbox, "{c:?}");
            assert!(live.iter().all(|l| l.id != c.id));
        }
        let push_live = push_counters(&SendLimits::default(), &LIVE, "h", 0);
        let push_sbx = push_counters(&SendLimits::default(), &sandbox, "h", 0);
        assert!(push_live
            .iter()
            .all(|l| push_sbx.iter().all(|s| s.id != l.id)));
        assert_eq!(
            push_live.iter().map(LimitCounter::kind).collect::<Vec<_>>(),
            [LimitKind::UserPush, LimitKind::NumberPush]
        );
    }
}
