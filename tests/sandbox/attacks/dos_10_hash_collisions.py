# attack: hash collisions (bounded): 50000 int keys that all hash to 0 (multiples of 2**61-1), quadratic dict insertion in C
# expect: timeout
def on_execute_send_phone_message(event, api):
    modulus = 2 ** 61 - 1
    keys = {i * modulus: i for i in range(50000)}
    return len(keys)
