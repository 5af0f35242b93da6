"""Editing users on another alias: the admin doing it stays logged in, on the right alias."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.test_switching import html, query_of

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

NEW_PASSWORD = "a-Long-new-passphrase-42"


def test_changing_a_password_on_another_alias_keeps_the_admin_logged_in(
    staff_client: Client, django_user_model: Any
) -> None:
    staff = django_user_model.objects.get(username="staff")
    # The same primary key as the logged-in admin, another person, another database.
    twin = django_user_model.objects.db_manager("second_db").create_user(
        "twin-on-second-db", password="old-password", pk=staff.pk
    )

    response = staff_client.post(
        f"/admin/auth/user/{twin.pk}/password/?_db=second_db",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert query_of(response["Location"])["_db"] == ["second_db"]
    assert staff_client.get("/admin/").status_code == 200  # still logged in
    after = html(staff_client.get(response["Location"]))
    assert "twin-on-second-db" in after and 'data-alias="second_db"' in after
    assert django_user_model.objects.using("second_db").get().check_password(NEW_PASSWORD)
    assert (
        not django_user_model.objects.using("default").get(pk=staff.pk).check_password(NEW_PASSWORD)
    )


def test_changing_ones_own_password_on_default_still_keeps_the_session(
    staff_client: Client, django_user_model: Any
) -> None:
    staff = django_user_model.objects.get(username="staff")

    response = staff_client.post(
        f"/admin/auth/user/{staff.pk}/password/?_db=default",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert staff_client.get("/admin/").status_code == 200
    assert django_user_model.objects.get(pk=staff.pk).check_password(NEW_PASSWORD)
