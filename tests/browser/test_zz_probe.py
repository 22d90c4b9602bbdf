import pytest
from playwright.sync_api import Page

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": ["--no-sandbox", "--disable-gpu"]}

@pytest.fixture
async def user(make_user):
    return await make_user()

def test_a(page: Page, live_server, user):
    page.goto(live_server.url + "/login")
    assert "Log in" in page.title()

def test_b(page: Page, live_server, user):
    page.goto(live_server.url + "/login")
    assert "Log in" in page.title()
