from openmwaa.services.authorization import VpcMap


def test_vpc_map_most_specific_wins() -> None:
    vpcs = VpcMap({"10.0.0.0/8": "vpc-big", "10.1.0.0/16": "vpc-small", "::1/128": "vpc-v6"})
    assert vpcs.vpc_of("10.1.2.3") == "vpc-small"
    assert vpcs.vpc_of("10.2.0.1") == "vpc-big"
    assert vpcs.vpc_of("::1") == "vpc-v6"
    assert vpcs.vpc_of("192.168.0.1") is None
    assert vpcs.vpc_of("not-an-ip") is None
