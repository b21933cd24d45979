"""moto_fixes.py's SNS fix through the real emulator: email and HTTPS subscriptions wait for
their owner's confirmation, as on AWS, and POST /_deployer/sns/confirm confirms them."""

import unittest

from test_aws_model import EmulatorTestCase


class PendingSubscriptionTest(EmulatorTestCase):
    def test_email_and_https_wait_for_confirmation_and_sqs_does_not(self):
        sns = self.emu.client("sns")
        topic = sns.create_topic(Name="alarms")["TopicArn"]
        answer = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        self.assertEqual(answer["SubscriptionArn"], "pending confirmation")
        https = sns.subscribe(
            TopicArn=topic, Protocol="https", Endpoint="https://hooks.example.com/a", ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        self.assertTrue(https.startswith(topic + ":"), https)
        sqs = sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:q"
        )["SubscriptionArn"]
        listed = {s["Endpoint"]: s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]}
        self.assertEqual(listed["ops@example.com"], "PendingConfirmation")
        self.assertEqual(listed["https://hooks.example.com/a"], "PendingConfirmation")
        self.assertEqual(listed["arn:aws:sqs:us-east-1:123456789012:q"], sqs)
        attributes = sns.get_subscription_attributes(SubscriptionArn=https)["Attributes"]
        self.assertEqual(attributes["PendingConfirmation"], "true")
        # Subscribing again is the same subscription (AWS makes no duplicate).
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        self.assertEqual(len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]), 3)

        self.assertEqual(self.emu.post_json("/_deployer/sns/confirm", {"endpoint": "ops@example.com"}), {"confirmed": 1})
        listed = {s["Endpoint"]: s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]}
        self.assertTrue(listed["ops@example.com"].startswith(topic + ":"))
        self.assertEqual(listed["https://hooks.example.com/a"], "PendingConfirmation")


if __name__ == "__main__":
    unittest.main()
