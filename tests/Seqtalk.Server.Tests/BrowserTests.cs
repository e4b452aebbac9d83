using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Seqtalk.Server;
using Xunit.Abstractions;

namespace Seqtalk.Server.Tests;

/// <summary>
/// The chat page in a real headless Chromium at a phone's size, driven as a person would: type, press Enter, read
/// the bubble. Screenshots go to <c>artifacts/</c> under the test output directory. Needs Debian's chromium and
/// chromium-driver (.ci/run installs them); without them this test fails, it does not skip.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class BrowserTests(ServerFixture fixture, ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";
    private const string ChromeDriver = "/usr/bin/chromedriver";

    [Fact]
    public async Task ChatPage_TypeAQuestionPressEnter_SeesTheModelsReply_AndSeesRefusals()
    {
        if (!File.Exists(Chromium) || !File.Exists(ChromeDriver))
        {
            Assert.Fail($"The browser test needs {Chromium} and {ChromeDriver}, and at least one is missing. "
                + "Install them with: apt-get update && apt-get install -y chromium chromium-driver (.ci/run does this).");
        }

        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxInputChars = 40 });
        string artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        string profile = Path.Combine(Path.GetTempPath(), "seqtalk-chromium-" + Guid.NewGuid().ToString("N"));

        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--user-data-dir=" + profile, "--window-size=390,844", "--lang=ko-KR");
        using var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        service.SuppressInitialDiagnosticInformation = true;
        try
        {
            using var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
            var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(30));
            // Headless windows have a minimum width; emulate a phone's viewport instead (390 x 844, as an iPhone 12-15).
            driver.ExecuteCdpCommand("Emulation.setDeviceMetricsOverride", new Dictionary<string, object?>
            {
                ["width"] = 390,
                ["height"] = 844,
                ["deviceScaleFactor"] = 2,
                ["mobile"] = true,
            });
            driver.Navigate().GoToUrl(server.BaseAddress);

            string question = fixture.Questions[0];
            string expected = fixture.Model.Reply(question);
            var input = driver.FindElement(By.Id("input"));
            input.SendKeys(question);
            input.SendKeys(Keys.Enter);

            var reply = wait.Until(d => d.FindElements(By.CssSelector(".bubble.bot[data-reply]")).FirstOrDefault());
            Assert.Equal(expected, reply.GetAttribute("data-reply"));
            Assert.Equal(question, driver.FindElement(By.CssSelector(".bubble.me")).Text);
            Assert.Equal("", input.GetAttribute("value"));

            // Phone-sized: nothing is wider than the screen.
            var js = (IJavaScriptExecutor)driver;
            Assert.True(true.Equals(js.ExecuteScript("return document.documentElement.scrollWidth <= document.documentElement.clientWidth;")),
                "the page scrolls sideways at 390 px");
            ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(artifacts, "chat-page.png"));

            // The settings panel: beam search of width 4 with 3 candidates shown under the reply.
            driver.FindElement(By.CssSelector("#settings summary")).Click();
            var strategy = driver.FindElement(By.Id("strategy"));
            strategy.Click();
            strategy.SendKeys("beam");   // typing an option's first letters selects it, as a person would
            strategy.SendKeys(Keys.Enter);
            Assert.Equal("beam", strategy.GetAttribute("value"));
            var nbest = driver.FindElement(By.Id("nbest"));
            nbest.Clear();
            nbest.SendKeys("3");
            string second = fixture.Questions[3];
            var beam = fixture.Model.ReplyDetailed(second, new Decoding.DecodeOptions { BeamSize = 4, NBest = 3 });
            input.SendKeys(second);
            input.SendKeys(Keys.Enter);
            var beamReply = wait.Until(d => d.FindElements(By.CssSelector(".bubble.bot[data-reply]")).Skip(1).FirstOrDefault());
            Assert.Equal(beam.Text, beamReply.GetAttribute("data-reply"));
            Assert.Equal(beam.NBest.Count - 1, beamReply.FindElements(By.CssSelector(".alt")).Count);
            ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(artifacts, "chat-page-beam.png"));
            driver.FindElement(By.CssSelector("#settings summary")).Click();

            // A question over the server's limit: the refusal is shown, not swallowed.
            input.SendKeys(new string('가', 60));
            input.SendKeys(Keys.Enter);
            var error = wait.Until(d => d.FindElements(By.CssSelector("#error.shown")).FirstOrDefault());
            Assert.True(error.Displayed);
            Assert.Contains("413", error.Text, StringComparison.Ordinal);
            ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(artifacts, "chat-page-refused.png"));
            output.WriteLine("screenshots: " + artifacts);
            driver.Quit();
        }
        finally
        {
            try { Directory.Delete(profile, recursive: true); } catch (IOException) { }
        }
    }
}
