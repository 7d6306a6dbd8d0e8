# coding: utf_7
# attack: utf-7 coding cookie: +AF8AXw- decodes to __, hiding dunder names from a checker that reads the raw bytes
# expect: compile_error
def on_execute_send_phone_message(event, api):
    return 'ESCAPED' + str(event.+AF8AXw-class+AF8AXw-)
