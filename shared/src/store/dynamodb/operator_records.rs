//! What the operator tool keeps and reads beyond programmes: the audit trail of operator
//! actions (partition `AUDIT`, newest first), and one user's data (their partition), to
//! export it (GDPR Art. 15) or erase it (Art. 17). No function calls these, and no function
//! may write the `AUDIT` partition (its IAM `LeadingKeys` condition).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use super::{executor::unavailable, schema, DynamoStore};
use crate::store::{StoreError, UserKey};

/// The audit trail's partition.
pub const AUDIT_PK: &str = "AUDIT";

/// One operator action: who (the caller's AWS identity), what, on what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The caller's AWS identity (an ARN), as STS reported it.
    pub who: String,
    /// The command (`create-programme`, `revoke-api-key`, `erase-user`, ...).
    pub action: String,
    /// What it acted on (`programme acme`, `key k1a2b of acme`, `user u1 of acme`).
    pub target: String,
    pub detail: String,
}

impl AuditRecord {
    pub fn to_json(&self) -> Value {
        json!({"atMs": self.at_ms, "who": self.who, "action": self.action,
               "target": self.target, "detail": self.detail})
    }
}

/// An attribute as JSON: strings, numbers (as written), sets and maps.
pub fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(n)),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => json!(set),
        AttributeValue::L(list) => Value::Array(list.iter().map(attribute_json).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), attribute_json(v)))
                .collect(),
        ),
        AttributeValue::Null(_) => Value::Null,
        _ => json!("<binary>"),
    }
}

impl DynamoStore {
    /// Appends an operator action to the audit trail (its sort key orders it by time).
    pub async fn record_audit(&self, record: &AuditRecord, nonce: &str) -> Result<(), StoreError> {
        const OP: &str = "record_audit";
        self.count();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", schema::s(AUDIT_PK))
            .item(
                "sk",
                schema::s(&format!("AUDIT#{:015}#{nonce}", record.at_ms)),
            )
            .item("at_ms", schema::n(record.at_ms))
            .item("who", schema::s(&record.who))
            .item("action", schema::s(&record.action))
            .item("target", schema::s(&record.target))
            .item("detail", schema::s(&record.detail))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        Ok(())
    }

    /// The newest `limit` operator actions, newest first.
    pub async fn audit_records(&self, limit: i32) -> Result<Vec<AuditRecord>, StoreError> {
        const OP: &str = "audit_records";
        self.count();
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", schema::s(AUDIT_PK))
            .scan_index_forward(false)
            .limit(limit)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        page.items()
            .iter()
            .map(|item| {
                Ok(AuditRecord {
                    at_ms: schema::get_n(item, "at_ms", OP)?,
                    who: schema::get_s(item, "who", OP)?,
                    action: schema::get_s(item, "action", OP)?,
                    target: schema::get_s(item, "target", OP)?,
                    detail: schema::get_s(item, "detail", OP)?,
                })
            })
            .collect()
    }

    /// Every item of one user's partition (factors, challenges, payments, step-up grants,
    /// idempotency records), page after page.
    pub async fn user_items(&self, user: &UserKey) -> Result<Vec<schema::Item>, StoreError> {
        const OP: &str = "user_items";
        let mut items = Vec::new();
        let mut start = None;
        loop {
            self.count();
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", schema::s(&schema::user_partition(user)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(OP, e))?;
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Deletes one item by its key (`pk`, `sk`).
    pub async fn delete_item(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        const OP: &str = "delete_item";
        self.count();
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", schema::s(pk))
            .key("sk", schema::s(sk))
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_as_json() {
        assert_eq!(attribute_json(&AttributeValue::N("42".into())), json!(42));
        assert_eq!(
            attribute_json(&AttributeValue::N("1.5".into())),
            json!("1.5")
        );
        assert_eq!(
            attribute_json(&AttributeValue::Ss(vec!["a".into()])),
            json!(["a"])
        );
        assert_eq!(attribute_json(&AttributeValue::S("x".into())), json!("x"));
    }
}
