"""Names fixed between the server, the terminals and third-party tools."""

from typing import Final

API_VERSION: Final = "1"
API_PREFIX: Final = "/api/v1"

SERVER_SERVICE_TYPE: Final = "_yuanjiao._tcp.local."
TERMINAL_SERVICE_TYPE: Final = "_yuanjiao-terminal._tcp.local."

# TXT record keys of the server's advertisement.
TXT_API: Final = "api"
TXT_SERVER_ID: Final = "id"
TXT_FINGERPRINT: Final = "fp"
TXT_PATH: Final = "path"

# TXT record keys of a terminal's advertisement.
TXT_TERMINAL_ID: Final = "tid"
TXT_VILLAGE: Final = "village"
TXT_VERSION: Final = "ver"
