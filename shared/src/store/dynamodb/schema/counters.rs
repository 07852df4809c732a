//! Send-limit counters: consumed under their limit, refunded.

use super::*;

// ---- counters ------------------------------------------------------------------------------

/// Consumes one unit of a counter, only while it is under its limit.
pub fn consume_counter(counter: &LimitCounter) -> Write {
    Write::new(
        counter_key(counter),
        Action::Update("ADD #count :one SET #ttl = :ttl".into()),
    )
    .names(&["count", "ttl"])
    .value(":one", n(1))
    .value(":limit", n(i64::from(counter.limit)))
    .value(":ttl", n(counter.window_end + TTL_GRACE_SECS))
    .condition("(attribute_not_exists(#count) AND :one <= :limit) OR #count < :limit")
}

/// Gives one unit back (never below zero).
pub fn refund_counter(counter: &LimitCounter) -> Write {
    Write::new(
        counter_key(counter),
        Action::Update("ADD #count :minus_one".into()),
    )
    .names(&["count"])
    .value(":minus_one", n(-1))
    .value(":zero", n(0))
    .condition("#count > :zero")
}
