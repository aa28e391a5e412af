def test_moto_server_round_trip(s3_client, s3_bucket, s3_endpoint):
    assert s3_endpoint.startswith("http://127.0.0.1:")
    s3_client.put_object(Bucket=s3_bucket, Key="a/b.txt", Body=b"hello")
    assert s3_client.get_object(Bucket=s3_bucket, Key="a/b.txt")["Body"].read() == b"hello"
