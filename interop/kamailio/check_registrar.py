"""Checks the Kamailio set-up of interop/kamailio.sh before latchkey's own tests use it.

A TLS client with the run's client certificate registers with digest auth (the algorithm the
challenge names, qop=auth); a MESSAGE it sends to sip:gate@ is challenged (407), then relayed
to the SIPp gate (started by the caller, answering 200); an INVITE from the SIPp door station
(started by the caller once this prints "registered") reaches it over its TLS connection and
is answered 180 then 486; a client certificate from another CA is refused.
Usage: check_registrar.py PORT CERTDIR PASSWORD
"""
import hashlib
import re
import socket
import ssl
import sys

port, certs, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect(cert):
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    ctx.load_cert_chain(f"{certs}/{cert}.crt", f"{certs}/{cert}.key")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("connection closed before a response")
        data += chunk
    return data.decode()


def digest_header(name, challenge_text, method, uri, password):
    challenge = re.search(name + r": Digest (.*)\r\n", challenge_text).group(1)
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    alg = params.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]
    digest = lambda s: h(s.encode()).hexdigest()
    cnonce, nc = "0a4f113b", "00000001"
    ha1 = digest(f"panel:{params['realm']}:{password}")
    ha2 = digest(f"{method}:{uri}")
    response = digest(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return alg, (
        f'Digest username="panel", realm="{params["realm"]}", '
        f'nonce="{params["nonce"]}", uri="{uri}", response="{response}", algorithm={alg}, '
        f'qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


def read_message(sock, buffered=b""):
    """One SIP message (head + Content-Length body) and what follows it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("connection closed")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = int((re.search(rb"(?i)content-length: *(\d+)", head) or [0, b"0"])[1])
    while len(rest) < length:
        rest += sock.recv(4096)
    return head.decode() + "\r\n\r\n" + rest[:length].decode(), rest[length:]


def register(sock, cseq, extra=""):
    local = sock.getsockname()
    msg = (
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bKcheck{cseq};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:panel@127.0.0.1>;tag=check\r\n"
        "To: <sip:panel@127.0.0.1>\r\n"
        "Call-ID: registrar-check@127.0.0.1\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:panel@{local[0]}:{local[1]};transport=tls>\r\n"
        "Expires: 10\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    sock.sendall(msg.encode())
    return read_response(sock)


sock = connect("client")
first = register(sock, 1)
assert first.startswith("SIP/2.0 401"), first
alg, auth = digest_header("WWW-Authenticate", first, "REGISTER", "sip:127.0.0.1", password)
second = register(sock, 2, f"Authorization: {auth}\r\n")
assert second.startswith("SIP/2.0 200"), second
assert "expires=" in second.lower(), second
print(f"registrar: {alg} digest with qop=auth accepted over mutual TLS")

local = sock.getsockname()
body = '{"jsonrpc":"2.0","method":"lock.setStatus","params":{"id":"1"}}'


def message(cseq, extra=""):
    sock.sendall((
        "MESSAGE sip:gate@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bKmsg{cseq};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:panel@127.0.0.1>;tag=msg\r\n"
        "To: <sip:gate@127.0.0.1>\r\n"
        "Call-ID: gate-check@127.0.0.1\r\n"
        f"CSeq: {cseq} MESSAGE\r\n"
        f"{extra}"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode())
    return read_message(sock)[0]


challenged = message(1)
assert challenged.startswith("SIP/2.0 407"), challenged
_, auth = digest_header("Proxy-Authenticate", challenged, "MESSAGE", "sip:gate@127.0.0.1", password)
delivered = message(2, f"Proxy-Authorization: {auth}\r\n")
assert delivered.startswith("SIP/2.0 200"), delivered
print("gate: the MESSAGE was challenged, then relayed and answered 200")

print("registered", flush=True)
invite, rest = read_message(sock)
assert invite.startswith("INVITE "), invite
def reply(code, reason, req):
    keep = [l for l in req.split("\r\n") if re.match(r"(?i)(via|from|to|call-id|cseq|record-route):", l)]
    lines = [f"SIP/2.0 {code} {reason}"] + [l + (";tag=panel" if l.lower().startswith("to:") and "tag=" not in l else "") for l in keep]
    sock.sendall(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
reply(180, "Ringing", invite)
reply(486, "Busy Here", invite)
ack, rest = read_message(sock, rest)
assert ack.startswith("ACK "), ack
print("doorbell: the INVITE arrived over the TLS connection; 180, 486 and the ACK went through")

try:
    bad = connect("foreign")
    bad.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n")
    data = bad.recv(100)
    assert not data, "a certificate from another CA must be refused"
except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
    pass
print("registrar: a client certificate from another CA is refused")
