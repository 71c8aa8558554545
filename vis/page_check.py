"""Open a page from disk in a real headless browser (Debian's chromium,
driven by chromedriver through selenium) and report what a reader would
meet: images that do not load, console errors; save a screenshot."""
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The flags a root user on a machine without network needs: no sandbox, no
# GPU, and none of the background connections the closed network refuses.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--allow-file-access-from-files", "--window-size=1280,2000"]


@dataclass
class PageReport:
    title: str
    images: int
    broken: list = field(default_factory=list)          # src of images that did not load
    console_errors: list = field(default_factory=list)  # SEVERE browser log entries


def check_page(html, screenshot=None):
    """Load ``html`` (a file path) and return a ``PageReport``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(Path(html).resolve().as_uri())
        # lazy images load when scrolled to: load them all, then ask each
        driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager');")
        driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all([...document.images].map(i => i.complete ? 0 :
                new Promise(r => { i.onload = r; i.onerror = r; }))).then(done);""")
        broken = driver.execute_script(
            "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'));")
        report = PageReport(driver.title, driver.execute_script("return document.images.length;"), broken,
                            [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"])
        if screenshot:
            driver.execute_script("window.scrollTo(0, 0);")
            driver.save_screenshot(str(screenshot))
        return report
    finally:
        driver.quit()
