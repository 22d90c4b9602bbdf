import re
from typing import Any
import httpx
from tests.conftest import csrf_token, post_form, log_in, PASSWORD

def err(html, field):
    m = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>(.*?)</p>', html, re.S)
    return m.group(1) if m else None

async def test_probe(client, logged_in, make_user, mailbox, engine):
    tok = await csrf_token(client)
    cases = [
        ("/signup", {"email": "\u202eadmin@example.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "😀@example.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "a@😀.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "ｃｒｅａｔｏｒ@example.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "ÄBC@example.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "äbc@example.com", "password": PASSWORD, "full_name": "x"}),
        ("/signup", {"email": "a\u200d@example.com", "password": PASSWORD, "full_name": "x"}),
    ]
    for url, data in cases:
        r = await post_form(client, url, data)
        print(url, data["email"].encode('unicode_escape'), r.status_code, err(r.text, "email"))
    # list values
    r = await client.post("/signup", data={"email": ["a@example.com", "b@example.com"], "password": PASSWORD, "_csrf_token": tok})
    print("list", r.status_code, err(r.text, "email"))
    # file upload
    r = await client.post("/signup", data={"password": PASSWORD, "_csrf_token": tok}, files={"email": ("e.txt", b"c@example.com")})
    print("file", r.status_code, err(r.text, "email"), err(r.text, "password"))
    # json
    r = await client.post("/signup", json={"email": "d@example.com", "password": PASSWORD}, headers={"x-csrftoken": tok})
    print("json", r.status_code, err(r.text, "email"), r.text[:300] if r.status_code >= 500 else "")
    # invalid utf8
    r = await client.post("/signup", content=b"email=\xff\xfe%40example.com&password=aaaaaaaaaaaaaa&_csrf_token=" + tok.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    print("badutf8 raw", r.status_code, err(r.text, "email"))
    r = await client.post("/signup", content=b"email=%ff%fe%40example.com&password=aaaaaaaaaaaaaa&_csrf_token=" + tok.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    print("badutf8 pct", r.status_code, err(r.text, "email"))
    r = await client.post("/signup", content=b"email=a%00b%40example.com&full_name=a%00b&password=aaaaaaaaaaaaaa&_csrf_token=" + tok.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    print("nul", r.status_code, err(r.text, "email"), err(r.text, "full_name"))
    # no csrf
    r = await client.post("/signup", data={"email": "x@example.com"})
    print("nocsrf", r.status_code, re.sub(r"\s+", " ", r.text)[-800:])
    r = await client.post("/signup", content=b"email=" + b"a" * (2 * 1024 * 1024) + b"&_csrf_token=" + tok.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    print("big", r.status_code)
    async with engine.connect() as c:
        import sqlalchemy as sa
        print((await c.execute(sa.text("select email from users"))).all())
        print((await c.execute(sa.text("show lc_ctype"))).all(), (await c.execute(sa.text("select lower('ÄBC')"))).all())
        print((await c.execute(sa.text("select recipient, error from mail_outbox"))).all())
