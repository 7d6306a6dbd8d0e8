# attack: write to the event so the host (or a later step of the pipeline) sees tenant-chosen values
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    event.message_options.recipient = "+15555550123"
    return "ESCAPED event writable"
