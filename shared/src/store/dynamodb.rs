//! DynamoDB store (next issue).
