# attack: AccessControl CVE-2021-32807 (GHSA-qcx9-j53g-ccgf) / Zope CVE-2021-32811: subclass string.Formatter in the script and override get_field
# expect: compile_error
from string import Formatter


class Leaky(Formatter):
    def get_field(self, field_name, args, kwargs):
        return Formatter.get_field(self, field_name, args, kwargs)


def on_execute_send_phone_message(event, api):
    return "ESCAPED " + Leaky().format("{0.get.__globals__}", event)
