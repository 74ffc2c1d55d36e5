import json

from account_connections.models import Approver, Member, Space, SpaceRole
from account_connections.repository import Repository
from tests.support import FakeContext, load_event, load_handler


def test_create_then_get(aws):
    repo = Repository(aws["table"], aws["ddb"])
    repo.put_space(Space(spaceId="demo", name="Demo", updatedAt="x", updatedBy="oscar"))
    repo.put_member(Member(spaceId="demo", userId="alice", role=SpaceRole.SPACE_ADMIN, updatedAt="x", updatedBy="o"))
    repo.put_approver(Approver(accountId="111122223333", email="admin@example.com", updatedAt="x", updatedBy="o"))
    handler = load_handler("manage_connections").handler
    result = handler(load_event("http_create_connection"), FakeContext())
    assert result["statusCode"] == 201, result
    body = json.loads(result["body"])
    assert body["status"] == "PENDING_APPROVAL"
    assert result["headers"]["X-Request-Id"] == "JKJaXmPLvHcESHA="
    again = handler(load_event("http_create_connection"), FakeContext())
    assert json.loads(again["body"]) == body
