# attack: int to str of a 5000-digit number (CVE-2020-10735 quadratic conversion) and int('9' * 5000)
# expect: runtime_error
def on_execute_send_phone_message(event, api):
    big = 10 ** 5000
    return str(big)[:10] + str(int('9' * 5000))[:10]
