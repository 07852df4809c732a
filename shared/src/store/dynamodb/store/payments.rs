//! Payment challenges, on DynamoDB.
use super::*;

#[async_trait]
impl Payments for DynamoStore {
    async fn payment_by_reference(
        &self,
        user: &UserKey,
        reference: &str,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        const OP: &str = "payment_by_reference";
        let Some(item) = self
            .get(OP, &schema::payment_reference_key(user, reference), true)
            .await?
        else {
            return Ok(None);
        };
        let id = ChallengeId::new(schema::get_s(&item, "challenge_id", OP)?);
        self.get_payment(user, &id).await
    }

    async fn get_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        self.get("get_payment", &schema::payment_key(user, id), true)
            .await?
            .map(|item| schema::payment_from_item(&item))
            .transpose()
    }

    async fn start_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code: Option<&NewChallenge>,
        replaces: Option<&ChallengeId>,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<PaymentStart, StoreError> {
        let mut writes = Vec::new();
        let sms = challenge.channel == Channel::Sms;
        if let Some(code) = code.filter(|_| sms) {
            writes.push(schema::sms_active_for(user, &code.phone_hash));
        }
        let reference_at = writes.len();
        writes.push(schema::take_payment_reference(
            user,
            &challenge.payment.reference,
            &challenge.id,
            replaces,
            now,
        ));
        writes.push(schema::put_payment(user, challenge));
        match (code, &challenge.request_id) {
            (Some(code), _) => writes.push(schema::put_challenge(
                user,
                &if sms {
                    ChallengeSlot::Payment(challenge.id.clone())
                } else {
                    ChallengeSlot::DeviceAnswer(challenge.id.clone())
                },
                code,
                now,
            )),
            (None, Some(request_id)) => writes.push(schema::put_push_request(
                request_id,
                user,
                &PushPurpose::Payment(challenge.id.clone()),
                now,
            )),
            (None, None) => {}
        }
        let leading = writes.len();
        writes.extend(counters.iter().map(schema::consume_counter));
        match self.transact("start_payment", writes).await? {
            Ok(()) => Ok(PaymentStart::Started),
            Err(failed) if sms && code.is_some() && failed.contains(&0) => {
                Ok(PaymentStart::NotRegistered)
            }
            Err(failed) if failed.contains(&reference_at) => Ok(PaymentStart::ReferenceTaken),
            Err(failed) => Ok(PaymentStart::Limited(limited(&failed, leading))),
        }
    }

    async fn abandon_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        const OP: &str = "abandon_payment";
        self.write(
            OP,
            schema::delete_challenge(user, &ChallengeSlot::Payment(challenge.id.clone()), code_id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            schema::release_payment_reference(user, &challenge.payment.reference, &challenge.id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            schema::delete_payment(user, &challenge.id),
            Returns::Nothing,
        )
        .await?;
        self.refund(counters).await
    }

    async fn finish_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
        outcome: &PaymentOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut writes = vec![schema::finish_payment(
            user,
            id,
            outcome.verified.as_ref(),
            now,
        )];
        if let Some((slot, code)) = &outcome.consume_code {
            writes.push(schema::delete_challenge(user, slot, code));
        }
        if let Some(channel) = outcome.require_factor {
            writes.push(schema::push_factor_active(user, channel));
        }
        Ok(self.transact("finish_payment", writes).await?.is_ok())
    }
}
