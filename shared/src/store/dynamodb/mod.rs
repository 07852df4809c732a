//! The DynamoDB store: one table, every port method one conditional write or one
//! transaction. `schema`: the table's keys, item shapes and every expression; `executor`:
//! sending them; `store`: the store's roles; `operator`: the operator's tasks; `settings`:
//! the programme settings document.
//!
//! Conditions carry the rules: an attempt is counted only while `attempts < limit` and
//! `expires_at > now`; a challenge is consumed only if it is still the one that was counted;
//! a reference is claimed only if no live record holds it; a counter grows only below its
//! limit, in the same transaction as the state change it pays for. When a condition fails,
//! the item it failed on (`ReturnValuesOnConditionCheckFailure`) tells why, without a read.

mod executor;
pub mod operator;
pub mod operator_records;
pub mod schema;
pub mod settings;
mod store;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;

use crate::store::StoreError;

/// The TTL attribute of the table.
pub const TTL_ATTRIBUTE: &str = "ttl";

pub struct DynamoStore {
    client: crate::aws::Lazy<Client>,
    table: String,
    requests: AtomicU64,
}

impl DynamoStore {
    /// A store on an existing client.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_lazy_client(crate::aws::lazy(move || client), table)
    }

    /// A store whose client is built on its first request (Lambda cold starts).
    pub fn with_lazy_client(client: crate::aws::Lazy<Client>, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            requests: AtomicU64::new(0),
        }
    }

    /// How many DynamoDB requests this store has made.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Builds the client and opens its connection with a request whose answer is used: one
    /// `GetItem` of the registry snapshot (every api key's programme, which the operator keeps
    /// with each change), so the cold start's init pays the connection at full CPU and the
    /// first request reads no programme. Uses only `dynamodb:GetItem` on a `PROGRAMME#` item,
    /// which every function reading the table has. One attempt: a table that cannot be reached
    /// fails at once (a refused connection) instead of holding init through the SDK's retries
    /// and their backoff (it held init for its whole 250 ms budget); the first request tries
    /// again. No snapshot yet (a table no operator changed): no programmes.
    pub async fn warm_up(
        &self,
    ) -> Result<Vec<(String, crate::domain::programme::Programme)>, StoreError> {
        self.count();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(schema::snapshot_key().to_item()))
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| executor::unavailable("warm_up", e))?;
        match output.item {
            Some(item) => schema::snapshot_programmes(&schema::snapshot_from_item(&item)?),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table that cannot be reached costs init one attempt, not the SDK's three with
    /// backoff between them: a listener that drops every connection counts how many the
    /// warm-up opened.
    #[tokio::test]
    async fn warm_up_makes_one_attempt() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(AtomicU64::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(connection);
            }
        });
        let client = Client::new(&crate::aws::sdk_config(Some(&endpoint)).await);
        let store = DynamoStore::new(client.clone(), "unreachable");
        assert!(store.warm_up().await.is_err());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // The request path keeps its retries: the same failure there is tried three times.
        let key = schema::Key {
            pk: "WARMUP".into(),
            sk: "WARMUP".into(),
        };
        assert!(store.get("get", &key, false).await.is_err());
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1 + crate::aws::MAX_ATTEMPTS as u64
        );
    }
}
