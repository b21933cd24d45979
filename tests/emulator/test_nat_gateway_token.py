"""CreateNatGateway is idempotent by ClientToken (moto_fixes._patch_ec2_nat_gateway_client_token)."""

import unittest

import boto3
from moto import mock_aws

import moto_fixes

moto_fixes.apply()


class NatGatewayClientToken(unittest.TestCase):
    @mock_aws
    def test_a_repeated_token_answers_with_the_first_gateway_and_other_parameters_are_refused(self):
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        enis_before = len(ec2.describe_network_interfaces()["NetworkInterfaces"])
        first = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, ClientToken="t1")["NatGateway"]
        again = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, ClientToken="t1")["NatGateway"]
        self.assertEqual(first["NatGatewayId"], again["NatGatewayId"])
        self.assertEqual(len(ec2.describe_nat_gateways()["NatGateways"]), 1)
        self.assertEqual(len(ec2.describe_network_interfaces()["NetworkInterfaces"]), enis_before + 1)
        with self.assertRaises(ec2.exceptions.ClientError) as refused:
            ec2.create_nat_gateway(SubnetId=other, AllocationId=eip, ClientToken="t1")
        self.assertEqual(refused.exception.response["Error"]["Code"], "IdempotentParameterMismatch")


if __name__ == "__main__":
    unittest.main()
