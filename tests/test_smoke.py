from ami_async.protocol import Parser


def test_banner_then_response_in_one_read() -> None:
    parser = Parser()
    msgs = parser.feed(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nPing: Pong\r\n\r\n")
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert [m.headers for m in msgs] == [(("Response", "Success"), ("Ping", "Pong"))]
