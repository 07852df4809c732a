//! Send limits: fixed windows aligned to the epoch (an hour window starts on the hour).
//!
//! Each limit is a counter item keyed by what it limits and by its window. The store consumes
//! every counter of a request in the same atomic write as the state change that sends
//! something, each with the condition `count < limit`; if any condition fails nothing is
//! consumed. The programme's daily counter is spread over shards when its cap is large, so one
//! busy programme does not make a single hot partition.

use serde::{Deserialize, Serialize};

pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// The SMS send limits of a programme (defaults from the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendLimits {
    pub per_user_per_hour: u32,
    pub per_user_per_day: u32,
    pub per_number_per_day: u32,
    pub per_programme_per_day: u32,
    /// Push enrolment requests per user per hour (`CHALLENGE_LIMIT_EXCEEDED`, a 409).
    pub push_per_user_per_hour: u32,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            per_user_per_hour: 5,
            per_user_per_day: 20,
            per_number_per_day: 10,
            per_programme_per_day: 10_000,
            push_per_user_per_hour: 5,
        }
    }
}

/// Which family a counter belongs to: `x-ratelimit-limit` lists every limit of the family hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    UserSms,
    NumberSms,
    ProgrammeSms,
    UserPush,
}

/// One counter a request consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCounter {
    pub kind: LimitKind,
    /// The store key of the counter (window included).
    pub key: String,
    pub limit: u32,
    pub window_secs: i64,
    /// When the window ends (epoch seconds): the counter's reset and its TTL.
    pub window_end: i64,
}

fn counter(kind: LimitKind, scope: &str, limit: u32, window_secs: i64, now: i64) -> LimitCounter {
    let index = now.div_euclid(window_secs);
    LimitCounter {
        kind,
        key: format!("{scope}#{window_secs}#{index}"),
        limit,
        window_secs,
        window_end: (index + 1) * window_secs,
    }
}

/// How many shards the programme's daily counter is spread over: one below 2,000 a day (so
/// small caps stay exact), up to 8 for large ones. Each shard holds an equal part of the cap.
fn programme_shards(cap: u32) -> u32 {
    (cap / 1_000).clamp(1, 8)
}

/// The counters one SMS send consumes. `shard_pick` is any random number.
pub fn sms_counters(
    limits: &SendLimits,
    programme_id: &str,
    credential_id: &str,
    phone_hash: &str,
    now: i64,
    shard_pick: u32,
) -> Vec<LimitCounter> {
    let user = format!("RATE#SMS#USER#{programme_id}#{credential_id}");
    let shards = programme_shards(limits.per_programme_per_day);
    let shard = shard_pick % shards;
    let share = limits.per_programme_per_day / shards
        + u32::from(shard < limits.per_programme_per_day % shards);
    vec![
        counter(
            LimitKind::UserSms,
            &user,
            limits.per_user_per_hour,
            HOUR,
            now,
        ),
        counter(LimitKind::UserSms, &user, limits.per_user_per_day, DAY, now),
        counter(
            LimitKind::NumberSms,
            &format!("RATE#SMS#NUMBER#{phone_hash}"),
            limits.per_number_per_day,
            DAY,
            now,
        ),
        counter(
            LimitKind::ProgrammeSms,
            &format!("RATE#SMS#PROGRAMME#{programme_id}#{shard}"),
            share,
            DAY,
            now,
        ),
    ]
}

/// The counter one push enrolment request consumes.
pub fn push_counters(
    limits: &SendLimits,
    programme_id: &str,
    credential_id: &str,
    now: i64,
) -> Vec<LimitCounter> {
    vec![counter(
        LimitKind::UserPush,
        &format!("RATE#PUSH#USER#{programme_id}#{credential_id}"),
        limits.push_per_user_per_hour,
        HOUR,
        now,
    )]
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
        .filter(|c| c.kind == worst.kind)
        .map(|c| format!("{};w={}", c.limit, c.window_secs))
        .collect();
    Some(RateLimited {
        limit_header: format!("{}, {}", worst.limit, family.join(", ")),
        reset_secs: (worst.window_end - now).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_epoch() {
        let c = counter(LimitKind::UserSms, "u", 5, HOUR, 7_200 + 59);
        assert_eq!(c.window_end, 10_800);
        assert_eq!(c.key, "u#3600#2");
        let d = counter(LimitKind::UserSms, "u", 5, HOUR, 10_800);
        assert_eq!(d.window_end, 14_400);
    }

    #[test]
    fn header_names_the_hit_and_its_family() {
        let all = sms_counters(&SendLimits::default(), "p", "u", "h", 1_000, 0);
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
        let number: Vec<&LimitCounter> = all.get(2).into_iter().collect();
        assert_eq!(
            rate_limited(&all, &number, 1_000).map(|r| r.limit_header),
            Some("10, 10;w=86400".into())
        );
    }

    #[test]
    fn when_hour_and_day_are_both_full_the_day_is_reported() {
        let all = sms_counters(&SendLimits::default(), "p", "u", "h", 1_000, 0);
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
        assert_eq!(
            sms_counters(&small, "p", "u", "h", 0, 7)
                .get(3)
                .map(|c| c.limit),
            Some(3)
        );
        let large = SendLimits::default();
        let total: u32 = (0..8)
            .filter_map(|s| {
                sms_counters(&large, "p", "u", "h", 0, s)
                    .get(3)
                    .map(|c| c.limit)
            })
            .sum();
        assert_eq!(total, 10_000);
    }
}
