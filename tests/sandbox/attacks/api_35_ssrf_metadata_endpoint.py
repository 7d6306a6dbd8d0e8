# attack: SSRF to the cloud metadata service 169.254.169.254 (AWS/GCP/Azure paths, names, encodings) and other link-local addresses
# expect: ok
def first_reached(api, urls):
    """The first URL the sandbox fetched, or None if every one was refused."""
    for url in urls:
        try:
            response = api.http.get(url)
        except ApiError:
            continue
        return url + " -> " + str(response.status) + " " + response.text[:40]
    return None


def on_execute_send_phone_message(event, api):
    port = str(event.fake.port)
    urls = [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://169.254.169.254/metadata/instance?api-version=2021-02-01",
        "https://2852039166/",
        "https://0xa9fea9fe/",
        "https://0251.0376.0251.0376/",
        "https://169.254.169.254.nip.io/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://metadata.example/",
        "https://[fd00:ec2::254]/",
        "https://[fe80::a9fe:a9fe]/",
        "https://169.254.0.1/",
    ]
    reached = first_reached(api, urls)
    if reached:
        return "ESCAPED SSRF reached " + reached
    return "denied"
