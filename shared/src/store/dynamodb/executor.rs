//! Sends the schema's writes (`schema::Write`) to DynamoDB: one on its own, or several as
//! one transaction. A write refused by its condition is an answer (`Written::Refused`, with
//! the item it failed on), never an error: the store decides what the refusal means.

use aws_sdk_dynamodb::{
    error::SdkError,
    operation::{
        delete_item::DeleteItemError, put_item::PutItemError,
        transact_write_items::TransactWriteItemsError, update_item::UpdateItemError,
    },
    types::{
        ConditionCheck, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
        TransactWriteItem, Update,
    },
};

use super::{
    schema::{self, Action, Item, Key, Write},
    DynamoStore,
};
use crate::{domain::send_limits::LimitCounter, store::StoreError};

/// A conditional write's result: done (with the item asked for), or refused by its
/// condition (with the item as it was, when DynamoDB returned it).
pub(super) enum Written {
    Done(Option<Item>),
    Refused(Option<Item>),
}

/// What the write should return.
#[derive(Clone, Copy)]
pub(super) enum Returns {
    Nothing,
    New,
    Old,
}

pub(super) fn unavailable<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    error: E,
) -> StoreError {
    StoreError::Unavailable {
        operation,
        source: Box::new(error),
    }
}

pub(super) fn build_error(
    operation: &'static str,
    error: aws_sdk_dynamodb::error::BuildError,
) -> StoreError {
    StoreError::Corrupt {
        operation,
        detail: error.to_string(),
    }
}

fn non_empty<V>(
    map: std::collections::HashMap<String, V>,
) -> Option<std::collections::HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

/// A single write whose condition can refuse it.
trait ConditionalError {
    /// Refused by its condition (rather than failed).
    fn is_refusal(&self) -> bool;
    /// The item the condition failed on, as DynamoDB returned it.
    fn refused_item(self) -> Option<Item>;
}

macro_rules! conditional_error {
    ($($error:ident),*) => {$(
        impl ConditionalError for $error {
            fn is_refusal(&self) -> bool {
                matches!(self, $error::ConditionalCheckFailedException(_))
            }

            fn refused_item(self) -> Option<Item> {
                match self {
                    $error::ConditionalCheckFailedException(refused) => refused.item,
                    _ => None,
                }
            }
        }
    )*};
}

conditional_error!(PutItemError, UpdateItemError, DeleteItemError);

/// The one mapping of a single write's result: done (its output), refused by its condition
/// (the item it failed on), or failed (503).
fn conditional<O, E, R>(
    operation: &'static str,
    result: Result<O, SdkError<E, R>>,
) -> Result<Result<O, Option<Item>>, StoreError>
where
    E: ConditionalError + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Ok(output)),
        Err(SdkError::ServiceError(e)) if e.err().is_refusal() => {
            Ok(Err(e.into_err().refused_item()))
        }
        Err(e) => Err(unavailable(operation, e)),
    }
}

impl DynamoStore {
    /// One page of a query (strongly consistent), from `start` (the last page's end).
    pub(super) async fn query(
        &self,
        operation: &'static str,
        query: &schema::Query,
        start: Option<Item>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        self.count();
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(query.key_condition.clone())
            .set_expression_attribute_names(Some(query.names.clone()))
            .set_expression_attribute_values(Some(query.values.clone()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable(operation, e))
    }

    pub(super) async fn get(
        &self,
        operation: &'static str,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.count();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| unavailable(operation, e))?;
        Ok(output.item)
    }

    /// Sends one write on its own.
    pub(super) async fn write(
        &self,
        operation: &'static str,
        write: Write,
        returns: Returns,
    ) -> Result<Written, StoreError> {
        self.count();
        let names = non_empty(write.names);
        let values = non_empty(write.values);
        let on_failure = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        match write.action {
            Action::Put(item) => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                Ok(match conditional(operation, result)? {
                    Ok(_) => Written::Done(None),
                    Err(item) => Written::Refused(item),
                })
            }
            Action::Update(update) => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(write.key.to_item()))
                    .update_expression(update)
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(match returns {
                        Returns::New => ReturnValue::AllNew,
                        Returns::Old => ReturnValue::AllOld,
                        Returns::Nothing => ReturnValue::None,
                    })
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                Ok(match conditional(operation, result)? {
                    Ok(output) => Written::Done(output.attributes),
                    Err(item) => Written::Refused(item),
                })
            }
            Action::Delete => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(write.key.to_item()))
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(match returns {
                        Returns::Old => ReturnValue::AllOld,
                        _ => ReturnValue::None,
                    })
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                Ok(match conditional(operation, result)? {
                    Ok(output) => Written::Done(output.attributes),
                    Err(item) => Written::Refused(item),
                })
            }
            Action::Check => Err(StoreError::Corrupt {
                operation,
                detail: "a condition check needs a transaction".into(),
            }),
        }
    }

    /// Sends writes as one transaction. `Err` with the index of every write whose condition
    /// failed when the transaction was cancelled by conditions.
    pub(super) async fn transact(
        &self,
        operation: &'static str,
        writes: Vec<Write>,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        Ok(self
            .transact_returning(operation, writes)
            .await?
            .map_err(|refused| refused.into_iter().map(|(i, _)| i).collect()))
    }

    /// `transact`, and for each refused write the item as it was (none: there was none).
    pub(super) async fn transact_returning(
        &self,
        operation: &'static str,
        writes: Vec<Write>,
    ) -> Result<Result<(), Vec<(usize, Option<Item>)>>, StoreError> {
        self.count();
        let on_failure = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let names = non_empty(write.names);
            let values = non_empty(write.values);
            let key = Some(write.key.to_item());
            let item = match write.action {
                Action::Put(item) => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .set_return_values_on_condition_check_failure(on_failure.clone())
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Update(update) => TransactWriteItem::builder().update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .update_expression(update)
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .set_return_values_on_condition_check_failure(on_failure.clone())
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Delete => TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .set_return_values_on_condition_check_failure(on_failure.clone())
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Check => TransactWriteItem::builder().condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .condition_expression(write.condition.unwrap_or_default())
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .set_return_values_on_condition_check_failure(on_failure.clone())
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
            };
            items.push(item.build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) = e.into_err()
                else {
                    return Err(StoreError::Corrupt {
                        operation,
                        detail: "unexpected error kind".into(),
                    });
                };
                let reasons = cancelled.cancellation_reasons();
                let failed: Vec<(usize, Option<Item>)> = reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, r)| (i, r.item().cloned().filter(|item| !item.is_empty())))
                    .collect();
                let other = reasons.iter().any(|r| {
                    !matches!(
                        r.code(),
                        None | Some("None") | Some("ConditionalCheckFailed")
                    )
                });
                if failed.is_empty() || other {
                    // A conflict with another transaction, or throttling: retryable.
                    return Err(unavailable(operation, cancelled));
                }
                Ok(Err(failed))
            }
            Err(e) => Err(unavailable(operation, e)),
        }
    }

    /// Refunds counters one by one (failure paths only; a counter already at zero stays).
    pub(super) async fn refund(&self, counters: &[LimitCounter]) -> Result<(), StoreError> {
        for counter in counters {
            self.write(
                "refund_counter",
                schema::refund_counter(counter),
                Returns::Nothing,
            )
            .await?;
        }
        Ok(())
    }
}
