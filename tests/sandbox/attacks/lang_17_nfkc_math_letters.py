# attack: mathematical italic letters that NFKC-normalise to open(), hoping the name lookup differs from what the policy saw
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    return "ESCAPED " + 𝘰𝘱𝘦𝘯("/etc/hostname").read()
