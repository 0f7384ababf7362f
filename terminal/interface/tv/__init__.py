"""The TV ten-foot interface: a full-screen Tk window driven by a remote (see app.py)."""
