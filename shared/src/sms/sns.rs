//! Amazon SNS SMS sender (next issue).
