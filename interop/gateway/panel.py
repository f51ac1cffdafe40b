"""A Calaos RemoteUI panel played by the Python `websockets` library against `latchkey serve`.

Run by interop/gateway.sh with: BASE (https://127.0.0.1:PORT), CA (the gateway's certificate
file), COOKIE and CSRF (an admin session), VARIANT (design | calaos), PREFIX (the
127.0.0.x addresses this run may use are 127.0.PREFIX.1-250), and BLACKLIST=1 to also check
the provisioning blacklist (about 110 s: the codes must pass the 1-per-10-s limit).

Every check prints one line; the first failure raises, so the exit status tells.
"""

import asyncio
import hashlib
import hmac
import http.client
import json
import os
import secrets
import ssl
import time
import urllib.parse

import websockets
from websockets.asyncio.client import connect

BASE = os.environ["BASE"]
CA = os.environ["CA"]
COOKIE = os.environ["COOKIE"]
CSRF = os.environ["CSRF"]
VARIANT = os.environ.get("VARIANT", "calaos")
PREFIX = int(os.environ.get("PREFIX", "1"))
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port

CTX = ssl.create_default_context(cafile=CA)
CTX.check_hostname = False  # the certificate names localhost and 127.0.0.1; we dial by IP


def ok(what):
    print(f"panel.py[{VARIANT}]: ok: {what}", flush=True)


def addr(n):
    return f"127.0.{PREFIX}.{n}"


def request(method, path, body=None, admin=False, source=None):
    conn = http.client.HTTPSConnection(
        HOST, PORT, context=CTX, timeout=10, source_address=(source, 0) if source else None
    )
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Cookie"] = f"__Host-lk_session={COOKIE}"
        headers["X-CSRF-Token"] = CSRF
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return r.status, dict(r.getheaders()), parsed


def expect(cond, what):
    if not cond:
        raise SystemExit(f"panel.py[{VARIANT}]: FAILED: {what}")
    ok(what)


def provision_body(code):
    if VARIANT == "calaos":
        return {
            "code": code,
            "device_info": {"type": "esp32", "mac_address": "AA:BB:CC:00:11:22",
                            "hardware_id": "waveshare-86-panel"},
        }
    return {"provisioning_code": code, "device_info": {"type": "esp32_touch_panel"}}


def credentials(answer):
    if VARIANT == "calaos":
        return answer["device_id"], answer["auth_token"], answer["device_secret"]
    ui = answer["remote_ui"]
    return ui["id"], ui["auth_token"], ui["device_secret"]


def signed_headers(token, secret, timestamp=None, nonce=None):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(32)
    text = f"{token}:{ts}:{nonce}" if VARIANT == "calaos" else f"{token}{ts}{nonce}"
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": f"Bearer {token}",
        "X-Auth-Timestamp": ts,
        "X-Auth-Nonce": nonce,
        "X-Auth-HMAC": mac,
    }


WS = BASE.replace("https://", "wss://") + "/api/v3/remote_ui/ws"


async def refused(headers, source, status, error):
    try:
        async with connect(WS, ssl=CTX, additional_headers=headers, local_addr=(source, 0),
                           open_timeout=10):
            raise SystemExit(f"panel.py[{VARIANT}]: FAILED: upgrade accepted, expected {status}")
    except websockets.exceptions.InvalidStatus as e:
        body = json.loads(e.response.body or b"{}")
        expect(e.response.status_code == status and body.get("error") == error
               and body.get("status") == "authentication_failed",
               f"upgrade refused {status} {error} (got {e.response.status_code} {body})")


async def next_message(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def main():
    code = f"PY{VARIANT[:3].upper()}{secrets.token_hex(3).upper()}"
    device = addr(10)

    # 1. A device asks before the admin added its code, then retries at once: 404, then 429.
    status, _, body = request("POST", "/api/v3/provision/request", provision_body(code),
                              source=device)
    expect(status == 404, f"unknown code answered 404 ({status} {body})")
    status, headers, _ = request("POST", "/api/v3/provision/request", provision_body(code),
                                 source=device)
    expect(status == 429 and "Retry-After" in headers,
           f"second request within 10 s limited: 429 with Retry-After ({status})")

    # 2. The admin adds the code, IOs and the panel's pages; the device's retry succeeds.
    status, _, created = request("POST", "/api/v3/remote_ui",
                                 {"name": f"Python {VARIANT}", "provisioning_code": code},
                                 admin=True)
    expect(status == 201, f"admin added the code ({status} {created})")
    # Each variant has IOs of its own: the two panels run at the same time.
    light, temp, other = (f"{name}_{VARIANT}" for name in ("light", "temp", "other"))
    for io, state in ((light, "false"), (temp, "21.5"), (other, "x")):
        status, _, _ = request("PUT", f"/api/v3/io/{io}",
                               {"type": "light", "name": io, "state": state}, admin=True)
        expect(status == 200, f"IO {io} saved")
    await asyncio.sleep(10.2)
    status, _, answer = request("POST", "/api/v3/provision/request", provision_body(code),
                                source=device)
    expect(status == 200, f"retry after 10 s provisioned ({status})")
    shape = "device_id" in answer if VARIANT == "calaos" else answer.get("success") is True
    expect(shape, f"answer in the {VARIANT} shape")
    panel_id, token, secret = credentials(answer)
    pages = {"pages": [{"id": "1", "name": "Home", "widgets": [
        {"type": "button", "io": light, "x": 10, "y": 10, "w": 100, "h": 50},
        {"type": "temp_display", "io_id": temp, "x": "120", "y": "10"}]}]}
    status, _, _ = request("PUT", f"/api/v3/remote_ui/{panel_id}/config", pages, admin=True)
    expect(status == 200, "panel pages saved")

    # 3. The right HMAC is accepted; the panel gets exactly its referenced IOs.
    good = signed_headers(token, secret)
    async with connect(WS, ssl=CTX, additional_headers=good, local_addr=(addr(20), 0),
                       open_timeout=10) as ws:
        first = await next_message(ws)
        greeting = "remote_ui_config_update" if VARIANT == "calaos" else "remote_ui_config"
        expect(first["msg"] == greeting, f"greeting {greeting}")
        states = await next_message(ws)
        expect(states["msg"] == "remote_ui_io_states"
               and sorted(states["data"].keys()) == sorted([light, temp]),
               f"io states for exactly {light} and {temp} ({sorted(states['data'].keys())})")

        # 4. Forged HMAC, stale timestamp and the replayed nonce are refused.
        forged = dict(signed_headers(token, secret), **{"X-Auth-HMAC": "0" * 64})
        await refused(forged, addr(21), 403, "invalid_hmac")
        stale = signed_headers(token, secret, timestamp=int(time.time()) - 120)
        await refused(stale, addr(22), 401, "invalid_timestamp")
        await refused(good, addr(23), 401, "invalid_nonce")

        # 5. An API change of a referenced IO arrives; an unreferenced one does not.
        status, _, _ = request("POST", f"/api/v3/io/{other}/state", {"state": "y"}, admin=True)
        expect(status == 200, "unreferenced IO changed through the API")
        status, _, _ = request("POST", f"/api/v3/io/{light}/state", {"state": f"on-{VARIANT}"},
                               admin=True)
        expect(status == 200, "referenced IO changed through the API")
        update = await next_message(ws)
        expect(update["msg"] == "io_state" and update["data"]["io_id"] == light
               and update["data"]["state"] == f"on-{VARIANT}",
               f"io_state for light arrived, nothing for other ({update})")

        # 6. The panel sets a state; the registry shows it.
        await ws.send(json.dumps({"msg": "set_state",
                                  "data": {"io": temp, "state": f"19-{VARIANT}"}}))
        deadline = time.time() + 10
        while time.time() < deadline:
            status, _, ios = request("GET", "/api/v3/io", admin=True)
            entry = [io for io in ios if io["id"] == temp][0]
            if entry["state"] == f"19-{VARIANT}":
                break
            await asyncio.sleep(0.1)
        expect(entry["state"] == f"19-{VARIANT}", "set_state from the panel reached the registry")

    if os.environ.get("BLACKLIST") == "1":
        # 7. More than 10 distinct codes from one address within an hour: blacklisted.
        source = addr(30)
        statuses = []
        for i in range(11):
            status, headers, body = request("POST", "/api/v3/provision/request",
                                            provision_body(f"WRONG{i:02d}"), source=source)
            statuses.append(status)
            if i < 10:
                await asyncio.sleep(10.2)
        # calaos_base answers 429 for both; a blacklist has no Retry-After (it lasts an hour).
        expect(statuses[:10] == [404] * 10 and statuses[10] == 429
               and "Retry-After" not in headers,
               f"ten wrong codes 404, the eleventh blacklisted: 429 without Retry-After "
               f"({statuses})")
        await asyncio.sleep(10.2)
        status, headers, _ = request("POST", "/api/v3/provision/request",
                                     provision_body("WRONG00"), source=source)
        expect(status == 429 and "Retry-After" not in headers,
               "the blacklisted address stays refused after the rate limit has passed")


asyncio.run(main())
