// Package browser tests the live view (package live) in a real browser:
// headless Chromium driven by chromedp. It is its own module so that the
// core never depends on chromedp. Its tests need Debian's chromium package
// (apt-get install chromium); without it they skip, except under CI=true,
// where they fail.
package browser
