"""Drives the review page in headless Chromium over the DevTools protocol, as a reviewer would: open it signed in,
claim the next item, pick another label, press Correct; screenshots of the claimed item (SCREENSHOT) and of the
page after the correction (SCREENSHOT with -resolved before .png). Prints one JSON line with what the
page showed; the Swift test then checks the API recorded the correction."""
import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request

import websockets

chromium, page_url, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--window-size=1280,900", f"--remote-debugging-port={port}", "about:blank"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def devtools(path, method="GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    return json.load(urllib.request.urlopen(request, timeout=5))


async def main():
    for _ in range(100):
        try:
            devtools("/json/version")
            break
        except OSError:
            time.sleep(0.1)
    target = devtools("/json/new?about:blank", method="PUT")
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
        counter = 0

        async def call(method, **params):
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    if "error" in message:
                        raise RuntimeError(message["error"])
                    return message["result"]

        async def evaluate(expression):
            result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            return result["result"].get("value")

        async def wait_for(expression, what, seconds=20):
            deadline = time.time() + seconds
            while time.time() < deadline:
                if await evaluate(expression):
                    return
                await asyncio.sleep(0.1)
            status = await evaluate("document.getElementById('status').textContent")
            raise AssertionError(f"timed out waiting for {what}: status {status!r}")

        await call("Page.enable")
        await call("Page.navigate", url=page_url)
        await wait_for("document.body.dataset.loaded === '1' && !document.getElementById('claimed').classList.contains('hidden')",
                       "the claimed item")
        claimed_text = await evaluate("document.getElementById('claimed').textContent")

        async def save(path):
            shot = await call("Page.captureScreenshot", format="png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))

        await save(screenshot)
        draft = await evaluate("document.getElementById('label-select').value")
        choice = await evaluate("""(function () {
            var s = document.getElementById('label-select');
            for (var i = 0; i < s.options.length; i++) if (s.options[i].value !== s.value) { s.value = s.options[i].value; break; }
            return s.value; })()""")
        await evaluate("document.getElementById('correct').click()")
        await wait_for("/corrected/.test(document.getElementById('status').textContent)", "the correction")
        status = await evaluate("document.getElementById('status').textContent")
        await save(screenshot[:-4] + "-resolved.png")
        print(json.dumps({"draft": draft, "chosen": choice, "status": status, "claimed_text": claimed_text}))

try:
    asyncio.run(main())
finally:
    browser.terminate()
    browser.wait(timeout=10)
