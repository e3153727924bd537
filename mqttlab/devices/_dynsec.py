"""mosquitto dynamic-security plugin: config file generation and control-API commands.

We use dynsec rather than ``acl_file`` because ``acl_file`` never checks SUBSCRIBE: a device
subscribing to another device's topics is granted (QoS echoed back) and only delivery is
filtered, so the device cannot tell it was refused. dynsec answers 0x87 (not authorized).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

#: mosquitto's own default; pbkdf2 cost is paid on every CONNECT, and fleets open thousands per second
_ITERATIONS = 101


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The dynsec JSON fields for a password (PBKDF2-HMAC-SHA512, as mosquitto_ctrl writes them)."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": _ITERATIONS,
    }


def _acl(acltype: str, topic: str, allow: bool = True) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow}


def device_topics(device_id: str) -> list[str]:
    """The topic trees a device is confined to."""
    return [f"devices/{device_id}/#", f"$aws/things/{device_id}/#"]


def device_role(device_id: str) -> dict[str, Any]:
    acls: list[dict[str, Any]] = []
    for topic in device_topics(device_id):
        acls += [_acl("publishClientSend", topic), _acl("subscribePattern", topic), _acl("unsubscribePattern", topic)]
    return {"rolename": f"device-{device_id}", "acls": acls}


def admin_role() -> dict[str, Any]:
    # '#' never matches topics starting with '$', so each '$' tree is granted by name.
    trees = ["#", "$SYS/#", "$aws/#", "$CONTROL/dynamic-security/#", "$share/#"]
    acls: list[dict[str, Any]] = []
    for topic in trees:
        kinds = ["publishClientSend", "publishClientReceive", "subscribePattern", "unsubscribePattern"]
        if topic == "$SYS/#":
            kinds.remove("publishClientSend")
        acls += [_acl(kind, topic) for kind in kinds]
    return {"rolename": "mqttlab-admin", "acls": acls}


def config_document(admin_user: str, admin_password: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole dynsec config file: the admin account plus one client and role per device."""
    clients = [
        {"username": admin_user, "textname": "mqttlab admin", **hash_password(admin_password),
         "roles": [{"rolename": "mqttlab-admin"}]}
    ]
    roles = [admin_role()]
    for dev in devices:
        role = device_role(dev["id"])
        roles.append(role)
        clients.append({"username": dev["id"], "textname": f"device {dev['id']}",
                        **hash_password(dev["password"]), "roles": [{"rolename": role["rolename"]}]})
    return {
        "clients": clients,
        "groups": [],
        "roles": roles,
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


def add_device_commands(device_id: str, password: str) -> list[dict[str, Any]]:
    role = device_role(device_id)
    return [
        {"command": "createRole", "rolename": role["rolename"], "acls": role["acls"]},
        {"command": "createClient", "username": device_id, "password": password,
         "roles": [{"rolename": role["rolename"]}]},
    ]


def remove_device_commands(device_id: str) -> list[dict[str, Any]]:
    return [
        {"command": "deleteClient", "username": device_id},
        {"command": "deleteRole", "rolename": f"device-{device_id}"},
    ]
