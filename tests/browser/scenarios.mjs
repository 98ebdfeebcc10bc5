// The web app as people use it, in Debian's Chromium: `node scenarios.mjs` with DOCKET_URL,
// the accounts in DOCKET_AGENT_EMAIL / DOCKET_PASSWORD, and DOCKET_SCREENSHOTS (a directory).
// Prints one line per check and exits non-zero at the first that fails.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { verify } from "../../docs/recipes/verify_webhook.mjs";

const base = process.env.DOCKET_URL;
const agentEmail = process.env.DOCKET_AGENT_EMAIL;
const managerEmail = process.env.DOCKET_MANAGER_EMAIL;
const adminEmail = process.env.DOCKET_ADMIN_EMAIL;
const adminPassword = process.env.DOCKET_ADMIN_PASSWORD;
const password = process.env.DOCKET_PASSWORD;
const shots = process.env.DOCKET_SCREENSHOTS;
const routedTicket = process.env.DOCKET_ROUTED_TICKET;
if (!base || !agentEmail || !managerEmail || !adminEmail || !adminPassword || !password || !shots || !routedTicket) {
  console.error("DOCKET_URL, DOCKET_AGENT_EMAIL, DOCKET_MANAGER_EMAIL, DOCKET_ADMIN_EMAIL, DOCKET_ADMIN_PASSWORD, DOCKET_PASSWORD, DOCKET_ROUTED_TICKET and DOCKET_SCREENSHOTS are required");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});

const consoleErrors = [];
let failed = false;

function check(condition, what) {
  if (!condition) {
    console.log(`FAIL ${what}`);
    failed = true;
    throw new Error(what);
  }
  console.log(`ok   ${what}`);
}

async function context(options = {}) {
  const made = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  made.on("page", watch);
  return made;
}

function watch(page) {
  page.on("console", (message) => {
    if (message.type() === "error") {
      consoleErrors.push(`${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
}

async function signIn(page, email, secret) {
  await page.goto(`${base}/login`);
  await page.fill("#email", email);
  await page.fill("#password", secret);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

/// Screenshots of the page as it is, light and dark, desktop and phone.
async function photograph(page, name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [width, label] of [[1280, "desktop"], [390, "phone"]]) {
      await page.setViewportSize({ width, height: label === "phone" ? 844 : 900 });
      await page.screenshot({ path: join(shots, `${name}-${label}-${scheme}.png`), fullPage: true });
      if (label === "phone" && scheme === "light") {
        const wide = await page.evaluate(() => document.documentElement.scrollWidth);
        check(wide <= width, `${name} fits a phone's width (${wide} px of ${width})`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 900 });
}

/// Presses Tab until the focused element matches `selector`; false if it never does.
async function tabTo(page, selector, most = 80) {
  for (let i = 0; i < most; i += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((wanted) => document.activeElement?.matches(wanted) ?? false, selector)) return true;
  }
  return false;
}

/// Opens a ticket page's record (timeline, routing, history), which it loads when asked.
async function openRecord(page) {
  await page.click("#ticket-record summary");
  await page.waitForSelector("#ticket-record details.history");
}

/// Counts full page loads, so "without reloading" can be checked.
function loads(page) {
  const counter = { n: 0 };
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) counter.n += 1;
  });
  return counter;
}

try {
  const stamp = Date.now();

  // ---- A customer registers and opens a ticket; an agent sees it arrive live. ----
  const customerSide = await context();
  const customer = await customerSide.newPage();
  await customer.goto(`${base}/register`);
  await photograph(customer, "register");
  const customerEmail = `web-${stamp}@docket.test`;
  await customer.fill("#full_name", "Wendy Web");
  await customer.fill("#email", customerEmail);
  await customer.fill("#password", "password123");
  await Promise.all([customer.waitForNavigation(), customer.click("main button[type=submit]")]);
  check(customer.url().endsWith("/portal"), "a registered customer lands on their portal");

  const agentSide = await context();
  const agent = await agentSide.newPage();
  // Keyboard only: tab into the form, type, and press Enter.
  await agent.goto(`${base}/login`);
  await agent.keyboard.press("Tab"); // skip link
  await agent.keyboard.press("Tab"); // brand
  await agent.keyboard.press("Tab"); // theme
  await agent.focus("#email");
  await agent.keyboard.type(agentEmail);
  await agent.keyboard.press("Tab");
  check(await agent.evaluate(() => document.activeElement.id === "password"), "Tab moves from e-mail to password");
  await agent.keyboard.type(password);
  await Promise.all([agent.waitForNavigation(), agent.keyboard.press("Enter")]);
  check(agent.url().endsWith("/tickets"), "an agent signs in with the keyboard alone and sees the ticket list");
  await agent.waitForSelector('html[data-live="open"]');
  const agentLoads = loads(agent);

  const subject = `Printer on fire ${stamp}`;
  await customer.goto(`${base}/portal/new`);
  await customer.fill("#subject", subject);
  await customer.fill("#description", "Smoke is coming out of tray 2.");
  await customer.selectOption("#priority", "high");
  await Promise.all([customer.waitForNavigation(), customer.click("main button[type=submit]")]);
  check(/\/portal\/tickets\/[0-9a-f-]+$/.test(customer.url()), `the new ticket opens at once (at ${customer.url()}: ${(await customer.textContent("main")).trim().slice(0, 200)})`);
  check((await customer.textContent("h1")).includes(subject), "the customer's ticket page shows it");
  const portalTicketUrl = customer.url();

  await agent.waitForSelector(`#ticket-rows >> text=${subject}`, { timeout: 5000 });
  check(agentLoads.n === 0, "the ticket appeared in the agent's list without a reload");
  await agent.waitForFunction(
    (wanted) => [...document.querySelectorAll("#ticket-rows tr")].some((row) => row.textContent.includes(wanted) && /\(in \d/.test(row.querySelector("[data-countdown]")?.textContent ?? "")),
    subject,
    { timeout: 5000 },
  );
  check(true, "its SLA badge counts down the time left");
  await photograph(agent, "ticket-list");

  // ---- The agent replies in public and adds an internal note; the customer sees the reply
  // live and never the note. ----
  await customer.waitForSelector('html[data-live="open"]');
  const customerLoads = loads(customer);
  // Keyboard only: search from the list, open the first result, reply.
  check(await tabTo(agent, "#q"), "Tab reaches the search box");
  await agent.keyboard.type(subject);
  await Promise.all([agent.waitForNavigation(), agent.keyboard.press("Enter")]);
  check((await agent.inputValue("#q")) === subject && (await agent.locator("#ticket-rows tbody tr").count()) === 1, "Enter in the search box searches");
  check(await tabTo(agent, "#ticket-rows a"), "Tab reaches the first result");
  await Promise.all([agent.waitForNavigation(), agent.keyboard.press("Enter")]);
  check((await agent.textContent("h1")).includes(subject), "Enter on a result opens the ticket");
  check(await tabTo(agent, "#body"), "Tab reaches the reply box");
  await agent.keyboard.type("We are on it: please unplug the printer.");
  check(await tabTo(agent, "form[action$='/comments'] button[type=submit]"), "Tab reaches Send, past who sees it");
  await Promise.all([agent.waitForNavigation(), agent.keyboard.press("Enter")]);
  check((await agent.textContent("#conversation")).includes("We are on it"), "the agent's reply is on the ticket page after sending");
  await agent.fill("#body", "Customer is a VIP; handle with care.");
  await agent.check("input[name=visibility][value=internal]");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/comments'] button[type=submit]")]);
  const note = agent.locator("ol.conversation li.internal");
  check((await note.count()) === 1 && (await note.textContent()).includes("Internal note"), "the internal note is marked apart from replies");
  await Promise.all([agent.waitForNavigation(), agent.click("text=Assign to me")]);
  check((await agent.textContent("[data-field=assignee]")).trim() === "you", "assign to me takes the ticket");
  const mineUrl = `${base}/tickets?assignee=me&sort=sla_due_at`;
  const held = await agentSide.newPage();
  await held.goto(mineUrl);
  check((await held.textContent("#ticket-rows")).includes(subject), "the list filters to the tickets I hold");
  check((await held.inputValue("#assignee")) === "me" && (await held.inputValue("#sort")) === "sla_due_at", "and shows the filter and sort it applied");
  await held.goto(`${base}/tickets?assignee=none`);
  check(!(await held.textContent("#ticket-rows")).includes(subject), "a held ticket is not among the unassigned");
  check((await held.textContent("nav.pager")).includes("Page 1 of 1"), "the list says which page it shows");
  await held.close();
  await agent.selectOption("#new-priority", "critical");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/priority'] button[type=submit]")]);
  check((await agent.textContent("[data-field=priority]")).trim() === "critical", "a priority change is saved");
  await openRecord(agent);
  check((await agent.textContent("details.history")).includes("TicketPriorityChanged"), "the history from the log shows it");
  check((await agent.textContent("details.history")).includes("you (agent)"), "and names who did it");
  await agent.selectOption("#new-team", { label: "Hardware" });
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/team'] button[type=submit]")]);
  check((await agent.textContent("[data-field=team]")).trim() === "Hardware", "the ticket moves to a team");
  const managerChoice = await agent.locator("#escalate-to option", { hasText: "A manager" }).getAttribute("value");
  await agent.selectOption("#escalate-to", managerChoice);
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/escalate'] button[type=submit]")]);
  await agent.waitForSelector("#escalate-error");
  check((await agent.textContent("#escalate-error")).includes("Say why"), "an escalation without a reason is named beside its field");
  await agent.fill("#escalate-reason", "Smoke: needs a manager now.");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/escalate'] button[type=submit]")]);
  check((await agent.textContent("[data-field=escalation]")).trim() === "level 1", "escalating raises the level");
  check((await agent.textContent("[data-field=assignee]")).trim() === "A manager", "and hands the ticket to the agent chosen, by name");
  const agentChoice = await agent.locator("#assign-to option", { hasText: "A agent" }).getAttribute("value");
  await agent.selectOption("#assign-to", agentChoice);
  await Promise.all([agent.waitForNavigation(), agent.click("form:has(#assign-to) button[type=submit]")]);
  check((await agent.textContent("[data-field=assignee]")).trim() === "you", "assigning by name gives the ticket to the agent chosen");
  await photograph(agent, "ticket-page");

  // ---- Search: highlighted snippets, suggestions as you type, saved searches, the team. ----
  const finder = await agentSide.newPage();
  await finder.goto(`${base}/tickets`);
  await finder.fill("#q", "unplug");
  await Promise.all([finder.waitForNavigation(), finder.click("form[role=search] button[type=submit]")]);
  const snippet = finder.locator(`#ticket-rows tr:has-text("${subject}") .snippet mark`);
  check((await snippet.count()) >= 1 && (await snippet.first().textContent()).toLowerCase() === "unplug", `a search shows where it matched, the words marked (${(await finder.innerHTML("#ticket-rows")).replace(/\s+/g, " ").slice(0, 600)})`);
  check((await finder.inputValue("#sort")) === "", "and sorts by best match");
  await finder.fill("#save-name", "");
  await Promise.all([finder.waitForNavigation(), finder.click("form.save-search button")]);
  check((await finder.textContent("#save-error")).includes("Name the search"), "saving a search without a name says so beside the field");
  await finder.fill("#save-name", "Unplug advice");
  await Promise.all([finder.waitForNavigation(), finder.click("form.save-search button")]);
  const savedLink = finder.locator('li[data-saved="Unplug advice"] a');
  check((await savedLink.count()) === 1, "the saved search is listed");
  await finder.goto(`${base}/tickets`);
  await Promise.all([finder.waitForNavigation(), finder.click('li[data-saved="Unplug advice"] a')]);
  check((await finder.inputValue("#q")) === "unplug" && (await finder.textContent("#ticket-rows")).includes(subject), "a saved search shows its list again");
  await Promise.all([finder.waitForNavigation(), finder.click('li[data-saved="Unplug advice"] button')]);
  check((await finder.locator('li[data-saved="Unplug advice"]').count()) === 0, "a saved search can be forgotten");
  await finder.goto(`${base}/tickets`);
  await finder.selectOption("#team", { label: "Hardware" });
  await Promise.all([finder.waitForNavigation(), finder.click("form[role=search] button[type=submit]")]);
  check((await finder.textContent("#ticket-rows")).includes(subject) && (await finder.textContent("#ticket-rows")).includes("Routed to hardware"), "the list filters by team");
  await finder.selectOption("#assignee", { label: "Nobody" });
  await Promise.all([finder.waitForNavigation(), finder.click("form[role=search] button[type=submit]")]);
  check(!(await finder.textContent("#ticket-rows")).includes(subject), "and by team and assignee together");
  await finder.goto(`${base}/tickets`);
  await finder.click("#q");
  await finder.keyboard.type(subject.slice(0, 12), { delay: 30 });
  await finder.waitForFunction(
    (wanted) => [...document.querySelectorAll("#suggestions option")].some((o) => o.value === wanted),
    subject,
    { timeout: 5000 },
  );
  check(true, "typing in the search box suggests matching subjects");
  await finder.close();

  // The routing explanation: who was considered for a routed ticket, and who was left out.
  const routed = await agentSide.newPage();
  await routed.goto(`${base}/tickets/${routedTicket}`);
  await openRecord(routed);
  await photograph(routed, "ticket-record");
  const explained = await routed.textContent("details.routing");
  check(explained.includes("needs team Hardware") && explained.includes("waits in the queue"), `the ticket page explains its routing (${explained.replace(/\s+/g, " ").trim().slice(0, 200)})`);
  await routed.close();

  await customer.waitForSelector("#conversation >> text=We are on it", { timeout: 5000 });
  check(customerLoads.n === 0, "the reply appeared on the customer's page without a reload");
  // The note was written after the reply; give its event time to reach the page too.
  await customer.waitForTimeout(1500);
  check(!(await customer.textContent("body")).includes("VIP"), "the customer never sees the internal note");
  await customer.reload();
  check(!(await customer.textContent("body")).includes("VIP"), "not after a reload either");
  await photograph(customer, "portal-ticket");
  await customer.goto(`${base}/portal`);
  check((await customer.textContent("#ticket-rows")).includes(subject), "the portal lists the customer's tickets");
  await photograph(customer, "portal");
  await customer.goto(`${base}/account/password`);
  await photograph(customer, "change-password");

  // ---- Mistakes show a message beside the field, and nothing typed is lost. ----
  const strangerSide = await context();
  const stranger = await strangerSide.newPage();
  await stranger.goto(`${base}/login`);
  await stranger.fill("#email", agentEmail);
  await stranger.fill("#password", "not-the-password");
  await stranger.click("main button[type=submit]");
  await stranger.waitForSelector("#login-error");
  check((await stranger.textContent("#login-error")).includes("Could not sign in"), "a wrong password says so");
  check((await stranger.inputValue("#email")) === agentEmail, "the e-mail typed is kept");
  check((await stranger.getAttribute("#password", "aria-invalid")) === "true", "the fields are marked invalid");
  await photograph(stranger, "sign-in-error");

  await customer.goto(`${base}/portal/new`);
  await customer.fill("#description", "Typed with care, subject forgotten.");
  await customer.click("main button[type=submit]");
  await customer.waitForSelector("#subject-error");
  check((await customer.textContent("#subject-error")).includes("Enter the subject"), "a missing subject is named beside its field");
  check((await customer.inputValue("#description")) === "Typed with care, subject forgotten.", "the description typed is kept");
  await photograph(customer, "open-ticket-error");

  // A stale edit: two tabs on one ticket; the second saves on what it saw, and is told.
  const ticketUrl = agent.url();
  const second = await agentSide.newPage();
  await second.goto(ticketUrl);
  await agent.selectOption("#new-status", "in_progress");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/status'] button[type=submit]")]);
  check((await agent.textContent("[data-field=status]")).trim() === "in_progress", "a status change is saved");
  // The second tab may already show the change live; it still holds the old version in its form.
  await second.selectOption("#new-status", "pending");
  await Promise.all([second.waitForNavigation(), second.click("form[action$='/status'] button[type=submit]")]);
  await second.waitForSelector("#status-error");
  check((await second.textContent("#status-error")).includes("Someone changed this ticket"), "a stale edit (412) says what happened");
  check((await second.inputValue("#new-status")) === "pending", "the status chosen is kept");
  await openRecord(agent);
  const stays = await agent.locator("details.timeline tr[data-period]").allTextContents();
  check(stays.length === 2 && stays[0].includes("new") && stays[1].includes("in_progress (now)"), `the status timeline says how long each status lasted (${stays.join(" | ")})`);

  // ---- A manager's dashboard moves when a ticket is resolved. ----
  const managerSide = await context();
  const manager = await managerSide.newPage();
  await signIn(manager, managerEmail, password);
  await manager.goto(`${base}/dashboard`);
  await manager.waitForSelector('html[data-live="open"]');
  const managerLoads = loads(manager);
  const resolvedBefore = Number((await manager.textContent("[data-status=resolved]")).trim());
  const openBefore = Number((await manager.textContent("[data-figure=open]")).trim());
  const resolved30Before = Number((await manager.textContent("[data-figure=resolved-30]")).trim());
  check(Number((await manager.textContent("[data-figure=created-30]")).trim()) >= 2, "the dashboard counts the tickets created in 30 days");
  check((await manager.locator("svg.chart").count()) === 2, "and draws the backlog and created-vs-resolved charts");
  await agent.goto(ticketUrl);
  await agent.selectOption("#new-status", "resolved");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/status'] button[type=submit]")]);
  await manager.waitForFunction(
    (before) => Number(document.querySelector("[data-status=resolved]").textContent.trim()) === before + 1,
    resolvedBefore,
    { timeout: 5000 },
  );
  check(managerLoads.n === 0, "the dashboard counted the resolved ticket without a reload");
  check(Number((await manager.textContent("[data-figure=open]")).trim()) === openBefore - 1, "and one fewer open");
  await manager.waitForFunction(
    (before) => Number(document.querySelector("[data-figure=resolved-30]").textContent.trim()) === before + 1,
    resolved30Before,
    { timeout: 5000 },
  );
  check(managerLoads.n === 0, "the created-vs-resolved chart counted it live too");
  check((await manager.textContent("[data-team=Hardware]")).includes("Hardware"), "team load lists each team");
  await Promise.all([manager.waitForNavigation(), manager.click("text=Preview a rebalance")]);
  check((await manager.getAttribute("[data-rebalance]", "data-rebalance")) === "dry-run", "a rebalance is previewed as a dry run first");
  await photograph(manager, "dashboard");

  // ---- Presence and typing: people on one ticket see each other, and see typing. ----
  const seesOnLine = (page, words) => page.waitForFunction(
    (wanted) => (document.getElementById("presence")?.textContent ?? "").includes(wanted),
    words,
    { timeout: 15000 },
  );
  await agent.goto(ticketUrl);
  await agent.waitForSelector('html[data-live="open"]');
  await manager.goto(ticketUrl);
  await manager.waitForSelector('html[data-live="open"]');
  await seesOnLine(agent, "A manager is viewing");
  check(true, "an agent sees who else has the ticket open");
  await seesOnLine(manager, "A agent is viewing");
  check(true, "and the one who came later sees who was there");
  await manager.click("#body");
  await manager.keyboard.type("Looking into it", { delay: 20 });
  await seesOnLine(agent, "A manager is typing");
  check(true, "an agent sees another typing a reply");
  await customer.goto(portalTicketUrl);
  await customer.waitForSelector('html[data-live="open"]');
  await agent.click("#body");
  await agent.keyboard.type("One moment", { delay: 20 });
  await seesOnLine(customer, "A agent is typing");
  check(!(await customer.textContent("#presence")).includes("viewing"), "the customer sees the agent typing, and never who is viewing");
  await manager.goto(`${base}/dashboard`);

  // ---- Agents and teams: the manager sets an agent's capacity. ----
  await manager.goto(`${base}/people`);
  const agentRow = manager.locator("tr[data-agent]", { hasText: "A agent" }).first();
  check((await agentRow.count()) === 1, "the agents page lists the agent");
  await agentRow.locator("input[name=capacity]").fill("7");
  await Promise.all([manager.waitForNavigation(), agentRow.locator("button").click()]);
  const updated = manager.locator("tr[data-agent]", { hasText: "A agent" }).first();
  check((await updated.locator("input[name=capacity]").inputValue()) === "7", "a capacity change is saved");
  await manager.fill("#skill-name", "Printers");
  await Promise.all([manager.waitForNavigation(), manager.click("form[action='/people/skills'] button")]);
  check((await manager.locator('li[data-skill="Printers"]').count()) === 1, "a new skill joins the catalogue");
  const skilled = manager.locator("tr[data-agent]", { hasText: "A agent" }).first();
  await skilled.locator("details.skills-editor summary").click();
  await skilled.locator("details.skills-editor select").first().selectOption("4");
  await Promise.all([manager.waitForNavigation(), skilled.locator("details.skills-editor button").click()]);
  check((await manager.locator("tr[data-agent]", { hasText: "A agent" }).first().locator("[data-field=skills]").textContent()).includes("Printers (4/5)"), "an agent's skill is saved with its proficiency");
  await Promise.all([manager.waitForNavigation(), manager.click("form[action='/people/teams'] button")]);
  check((await manager.textContent("#team-error")).includes("Name the team"), "a team without a name is refused beside the field");
  await manager.fill("#team-name", "Field service");
  await manager.fill("#team-description", "On-site repairs");
  await Promise.all([manager.waitForNavigation(), manager.click("form[action='/people/teams'] button")]);
  const fieldTeam = manager.locator('section.team[data-team="Field service"]');
  check((await fieldTeam.count()) === 1 && (await fieldTeam.textContent()).includes("On-site repairs"), "a new team is listed with its description");
  const candidate = await fieldTeam.locator("select[name=user] option", { hasText: "A agent" }).getAttribute("value");
  await fieldTeam.locator("select[name=user]").selectOption(candidate);
  await fieldTeam.locator("select[name=team_role]").selectOption("lead");
  await Promise.all([manager.waitForNavigation(), fieldTeam.locator("form.add-member button").click()]);
  const lead = manager.locator('section.team[data-team="Field service"] li[data-member="A agent"]');
  check((await lead.count()) === 1 && (await lead.textContent()).includes("lead"), "an agent joins a team as its lead");
  await photograph(manager, "agents-and-teams");
  await Promise.all([manager.waitForNavigation(), lead.locator("button").click()]);
  check((await manager.locator('section.team[data-team="Field service"] li[data-member="A agent"]').count()) === 0, "and can be taken out of it");

  // ---- My work: the queue with claim, my status, my shift. ----
  const second_subject = `Second issue ${stamp}`;
  await customer.goto(`${base}/portal/new`);
  await customer.fill("#subject", second_subject);
  await customer.fill("#description", "The scanner jams.");
  await Promise.all([customer.waitForNavigation(), customer.click("main button[type=submit]")]);
  await agent.goto(`${base}/work`);
  const queued = agent.locator(`tr[data-queued]:has-text("${second_subject}")`);
  check((await queued.count()) === 1, "the unassigned ticket waits in my queue");
  await Promise.all([agent.waitForNavigation(), queued.locator("button.claim").click()]);
  check((await agent.textContent("#ticket-rows")).includes(second_subject), "a claimed ticket is among my open tickets");
  check((await agent.locator(`tr[data-queued]:has-text("${second_subject}")`).count()) === 0, "and no longer in the queue");
  await agent.selectOption("#my-status", "away");
  await Promise.all([agent.waitForNavigation(), agent.click("form[action='/work/status'] button")]);
  check((await agent.textContent("[data-field=my-status]")).trim() === "away", "my status is saved");
  await Promise.all([agent.waitForNavigation(), agent.click("text=Start shift")]);
  check((await agent.textContent("main")).includes("On shift since"), "a shift starts");
  check((await agent.textContent("[data-field=my-status]")).trim() === "available", "starting a shift makes me available");
  await Promise.all([agent.waitForNavigation(), agent.click("text=Start break")]);
  check((await agent.textContent("li[data-break]")).includes("On a break"), "a break starts from now");
  await photograph(agent, "my-work");
  await Promise.all([agent.waitForNavigation(), agent.click("text=End shift")]);
  check((await agent.textContent("main")).includes("Off shift"), "a shift ends");

  // ---- An admin adds an SLA policy and sees it applied to the next ticket. ----
  const adminSide = await context();
  const admin = await adminSide.newPage();
  await signIn(admin, adminEmail, adminPassword);
  await admin.goto(`${base}/settings/sla`);
  const policyName = `VIP high ${stamp}`;
  await admin.fill("#name", policyName);
  await admin.check("input[name=high]");
  await admin.fill("#first_response", "30");
  await admin.fill("#resolution", "");
  await admin.fill("#escalation", "120");
  await Promise.all([admin.waitForNavigation(), admin.click("main button[type=submit]")]);
  check((await admin.textContent("#resolution-error")).includes("whole number of minutes"), "a missing target is named beside its field");
  check((await admin.inputValue("#name")) === policyName && (await admin.isChecked("input[name=high]")), "what was typed and ticked is kept");
  await admin.fill("#resolution", "240");
  await Promise.all([admin.waitForNavigation(), admin.click("main button[type=submit]")]);
  const policy = admin.locator(`section.policy[data-policy="${policyName}"]`);
  check((await policy.count()) === 1 && (await policy.textContent()).includes("version 1"), "the policy is listed at version 1");
  check((await policy.locator("details.history").textContent()).includes("SlaPolicyCreated"), "its version history comes from the log");
  await photograph(admin, "sla-policies");
  const third = `Third issue ${stamp}`;
  await customer.goto(`${base}/portal/new`);
  await customer.fill("#subject", third);
  await customer.fill("#description", "Urgent: the router is down.");
  await customer.selectOption("#priority", "high");
  await Promise.all([customer.waitForNavigation(), customer.click("main button[type=submit]")]);
  await admin.goto(`${base}/tickets?q=${encodeURIComponent(third)}`);
  await Promise.all([admin.waitForNavigation(), admin.click(`#ticket-rows tr:has-text("${third}") a`)]);
  // The page is live: the policy shows as soon as the ticket's log records it.
  await admin.waitForFunction(
    (name) => document.querySelector("[data-field=policy]")?.textContent.includes(name),
    policyName,
    { timeout: 5000 },
  );
  check((await admin.textContent("[data-field=policy]")).includes(policyName), "the next high ticket runs under the new policy");
  check((await admin.textContent("tr[data-metric=first_response]")).includes("30 min"), "with its first-response target");

  // ---- Calendars with holidays, escalation rules and users, each with its history. ----
  await admin.goto(`${base}/settings/calendars`);
  await admin.fill("#name", "Berlin office");
  await admin.fill("#timezone", "Mars/Olympus");
  await admin.fill("#holidays", "2026-12-25");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/calendars'] button[type=submit]")]);
  check((await admin.textContent("#timezone-error")).length > 0 && (await admin.inputValue("#name")) === "Berlin office", "a wrong time zone is named beside its field, the name kept");
  await admin.fill("#timezone", "Europe/Berlin");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/calendars'] button[type=submit]")]);
  const berlin = admin.locator('section[data-calendar="Berlin office"]');
  check((await berlin.count()) === 1 && (await berlin.textContent()).includes("monday 09:00–17:00"), "a calendar is listed with its opening hours");
  await berlin.locator("input[type=date]").fill("2026-12-26");
  await Promise.all([admin.waitForNavigation(), berlin.locator("form.holiday button").click()]);
  const holidays = await admin.textContent('section[data-calendar="Berlin office"] [data-field=holidays]');
  check(holidays.includes("2026-12-25") && holidays.includes("2026-12-26"), "a holiday is added");
  check((await admin.textContent('section[data-calendar="Berlin office"] details.history')).includes("CalendarUpdated"), "as a new version in the calendar's history");
  await photograph(admin, "calendars");
  await admin.goto(`${base}/settings/sla`);
  const vip = admin.locator(`section.policy[data-policy="${policyName}"]`);
  await vip.locator("details.edit-policy summary").click();
  await vip.locator("input[name=first_response]").fill("45");
  await vip.locator("select[name=calendar]").selectOption({ label: "the hours of Berlin office" });
  await Promise.all([admin.waitForNavigation(), vip.locator("details.edit-policy button").click()]);
  const edited = admin.locator(`section.policy[data-policy="${policyName}"]`);
  check((await edited.textContent()).includes("version 2") && (await edited.textContent()).includes("counted in the hours of Berlin office") && (await edited.textContent()).includes("first response 45 min"), "a policy's targets and calendar change as a new version");
  check((await edited.locator("details.history").textContent()).includes("SlaPolicyUpdated"), "which its history shows");

  await admin.goto(`${base}/settings/escalation-rules`);
  await admin.fill("#name", "Unclaimed too long");
  await admin.selectOption("#condition", "unassigned_for");
  await admin.selectOption("#action", "escalate");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/escalation-rules'] button[type=submit]")]);
  check((await admin.textContent("#minutes-error")).includes("minutes") && (await admin.inputValue("#condition")) === "unassigned_for", "a waiting rule without minutes is named beside the field, the choices kept");
  await admin.fill("#minutes", "30");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/escalation-rules'] button[type=submit]")]);
  check((await admin.locator('[data-saved-rule="Unclaimed too long"]').count()) === 1, "a rule is saved, saying how many tickets it takes at once");
  const rule = admin.locator('section[data-rule="Unclaimed too long"]');
  check((await rule.textContent()).includes("nobody took it for 30 min, escalate one level"), "and reads as a sentence");
  await Promise.all([admin.waitForNavigation(), rule.locator("button").click()]);
  check((await admin.textContent('section[data-rule="Unclaimed too long"] h2')).includes("off"), "a rule can be switched off");
  await photograph(admin, "escalation-rules");

  await admin.goto(`${base}/settings/users`);
  await admin.fill("#full_name", "Vera Viewer");
  await admin.fill("#email", `vera-${stamp}@docket.test`);
  await admin.fill("#password", "short");
  await admin.selectOption("#role", "viewer");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/users'] button[type=submit]")]);
  check((await admin.textContent("#password-error")).length > 0 && (await admin.inputValue("#email")) === `vera-${stamp}@docket.test`, "a short password is refused beside its field, the rest kept");
  await admin.fill("#password", "password123");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/users'] button[type=submit]")]);
  const vera = () => admin.locator(`tr[data-user="vera-${stamp}@docket.test"]`);
  check((await vera().count()) === 1 && (await vera().locator("select").inputValue()) === "viewer", "an admin opens a staff account with its role");
  await vera().locator("select").selectOption("agent");
  await Promise.all([admin.waitForNavigation(), vera().locator("form:has(select) button").click()]);
  check((await vera().locator("select").inputValue()) === "agent", "and changes the role");
  await Promise.all([admin.waitForNavigation(), vera().locator("button:has-text('Deactivate')").click()]);
  check((await vera().locator("[data-field=state]").textContent()).trim() === "deactivated", "and deactivates the account");
  const veraHistory = await vera().locator("details.history").textContent();
  check(veraHistory.includes("UserRoleChanged") && veraHistory.includes("UserDeactivated"), `each change is in the account's history (${veraHistory.replace(/\s+/g, " ").trim()})`);
  await photograph(admin, "users-and-roles");

  // ---- An integration: a service account, its key shown once, used from here, revoked. ----
  await admin.goto(`${base}/settings/users`);
  await admin.fill("#full_name", "Nightly export");
  await admin.fill("#email", `export-${stamp}@docket.test`);
  await admin.check("input[name=service]");
  await admin.selectOption("#role", "viewer");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/users'] button[type=submit]")]);
  const exporter = admin.locator(`tr[data-user="export-${stamp}@docket.test"]`);
  check((await exporter.count()) === 1 && (await exporter.textContent()).includes("service"), "an admin opens a service account without a password");
  await Promise.all([admin.waitForNavigation(), admin.click("header a[href='/account/api-keys']")]);
  await admin.fill("#name", "Nightly export");
  await admin.fill("#allowed_ips", "127.0.0.1, the office");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/account/api-keys'] button[type=submit]")]);
  check((await admin.textContent("#allowed_ips-error")).length > 0 && (await admin.inputValue("#name")) === "Nightly export", "an address that is not one is refused beside its field, the rest kept");
  await admin.fill("#allowed_ips", "127.0.0.1, ::1");
  await admin.selectOption("#owner", { label: "Nightly export (service account)" });
  await admin.selectOption("#role", "viewer");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/account/api-keys'] button[type=submit]")]);
  const madeKey = await admin.inputValue("#new-key");
  check(madeKey.startsWith("dk_"), "the new key is shown once, to copy");
  const asService = await fetch(`${base}/api/auth/me`, { headers: { "X-API-Key": madeKey } });
  const serviceAccount = asService.status === 200 ? await asService.json() : {};
  check(serviceAccount.service === true && serviceAccount.full_name === "Nightly export", `the key acts as the service account (${asService.status})`);
  await admin.goto(`${base}/account/api-keys`);
  check(!(await admin.content()).includes(madeKey), "and is never shown again");
  const keyRow = admin.locator('tr[data-key="Nightly export"]');
  check((await keyRow.textContent()).includes("Nightly export") && (await keyRow.textContent()).includes("127.0.0.1"), "the list names the account it acts as and where it may be used from");
  await photograph(admin, "api-keys");
  await Promise.all([admin.waitForNavigation(), keyRow.locator("button:has-text('Revoke')").click()]);
  check((await keyRow.locator("[data-field=state]").textContent()).trim() === "revoked", "the key is revoked");
  const afterRevoke = await fetch(`${base}/api/auth/me`, { headers: { "X-API-Key": madeKey } });
  check(afterRevoke.status === 401, `and stops working at once (${afterRevoke.status})`);

  // ---- Webhooks: an endpoint added (its secret shown once), a test sent to a receiver that
  // verifies it with the documented recipe, the delivery log, and a delivery sent again. ----
  const hooks = [];
  const receiverServer = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      hooks.push({ headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiverServer.listen(0, "127.0.0.1", resolve));
  const hookUrl = `http://127.0.0.1:${receiverServer.address().port}/hook`;
  await admin.goto(`${base}/settings/webhooks`);
  await admin.fill("#url", hookUrl);
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/webhooks'] button[type=submit]")]);
  check((await admin.textContent("#events-error")).length > 0 && (await admin.inputValue("#url")) === hookUrl, "an endpoint with no events is refused beside them, the URL kept");
  await admin.check("input[name=events][value='ticket.created']");
  await admin.check("input[name=events][value='comment.added']");
  await admin.fill("#description", "CRM sync");
  await Promise.all([admin.waitForNavigation(), admin.click("main form[action='/settings/webhooks'] button[type=submit]")]);
  const hookSecret = await admin.inputValue("#new-secret");
  check(hookSecret.startsWith("whsec_"), "the endpoint's signing secret is shown once");
  const endpointPanel = admin.locator(`section[data-endpoint="${hookUrl}"]`);
  check((await endpointPanel.locator("[data-field=state]").textContent()).trim() === "active", "the endpoint is listed, active");
  await photograph(admin, "webhooks");
  await Promise.all([admin.waitForNavigation(), endpointPanel.locator("button:has-text('Send a test')").click()]);
  for (let i = 0; i < 100 && hooks.length === 0; i += 1) await new Promise((r) => setTimeout(r, 100));
  check(hooks.length === 1 && verify(hookSecret, hooks[0].headers, hooks[0].body), "the test ping arrives, signed, and the documented recipe verifies it");
  check(JSON.parse(hooks[0].body.toString()).type === "webhook.ping", "it is a webhook.ping");
  let delivered = false;
  for (let i = 0; i < 50 && !delivered; i += 1) {
    await admin.reload();
    delivered = (await admin.locator("tr[data-kind='webhook.ping'] [data-field=state]").textContent()).trim() === "delivered";
  }
  check(delivered && (await admin.textContent("tr[data-kind='webhook.ping']")).includes("answered 204"), "the delivery log shows the attempt and the receiver's answer");
  await photograph(admin, "webhook-deliveries");
  await Promise.all([admin.waitForNavigation(), admin.locator("tr[data-kind='webhook.ping'] button").click()]);
  for (let i = 0; i < 100 && hooks.length < 2; i += 1) await new Promise((r) => setTimeout(r, 100));
  check(hooks.length === 2 && hooks[1].headers["webhook-id"] === hooks[0].headers["webhook-id"], "sent again, under the same webhook-id");
  receiverServer.close();

  // ---- E-mail: a template edited with a mistake (refused beside its field, the draft kept),
  // previewed for a real ticket, saved; the outbox holds what would go out (no SMTP here). ----
  await admin.goto(`${base}/settings/email`);
  check(await admin.isVisible("tr[data-kind='ticket_created']"), "the e-mail settings list the templates");
  await photograph(admin, "email-templates");
  await Promise.all([admin.waitForNavigation(), admin.click("tr[data-kind='ticket_created'] a")]);
  await admin.fill("#subject", "We have {{ ticket.nonsense }}");
  await Promise.all([admin.waitForNavigation(), admin.click("button[value=preview]")]);
  check((await admin.textContent("#subject-error")).includes("nonsense") && (await admin.inputValue("#subject")) === "We have {{ ticket.nonsense }}", "an unknown variable is refused beside the subject, the draft kept");
  await admin.fill("#subject", "We have your ticket {{ ticket.number }}");
  await Promise.all([admin.waitForNavigation(), admin.click("button[value=preview]")]);
  const previewed = (await admin.textContent("[data-field=preview-subject]")).trim();
  check(/^We have your ticket TKT-\d+$/.test(previewed), `the preview renders the draft for the newest ticket (${previewed})`);
  const previewFrame = await (await admin.$("iframe.mail-html")).contentFrame();
  check((await previewFrame.textContent("body")).includes("We received your request"), "the HTML part is shown as a mail client shows it");
  await photograph(admin, "email-template");
  await Promise.all([admin.waitForNavigation(), admin.click("button[value=save]")]);
  check((await admin.textContent("[role=status]")).includes("Saved") && (await admin.inputValue("#subject")) === "We have your ticket {{ ticket.number }}", "the template is saved");
  check((await admin.textContent("details.history")).includes("version 1"), "its version history names the change");
  await admin.goto(`${base}/settings/email/outbox`);
  const queuedMail = admin.locator("tr[data-mail]").first();
  check((await queuedMail.count()) === 1, "the outbox lists the mail that waits for an SMTP server");
  await photograph(admin, "outbox");
  await Promise.all([admin.waitForNavigation(), queuedMail.locator("a").click()]);
  check((await admin.textContent("[data-field=text]")).trim().length > 0 && (await admin.textContent("main")).includes("Message-ID"), "a mail opens with its headers and text");
  await photograph(admin, "outbox-mail");

  // ---- Alerts: a second escalation raises one; it reaches the manager's page live; a note too
  // long is refused beside it; acknowledged with a note, then resolved. ----
  await manager.goto(`${base}/alerts`);
  await manager.waitForSelector('html[data-live="open"]');
  const alertLoads = loads(manager);
  await agent.goto(`${base}/tickets/${routedTicket}`);
  for (const reason of ["The customer is a hospital.", "Still down after the swap."]) {
    await agent.fill("#escalate-reason", reason);
    await Promise.all([agent.waitForNavigation(), agent.click("form[action$='/escalate'] button[type=submit]")]);
  }
  check((await agent.textContent("[data-field=escalation]")).trim() === "level 2", "a ticket escalated twice is at level 2");
  await manager.waitForSelector("li[data-kind='escalation']", { timeout: 10000 });
  await manager.waitForFunction(() => !document.getElementById("alerts-count").hidden, null, { timeout: 10000 });
  check(alertLoads.n === 0 && (await manager.textContent("li[data-kind='escalation'] [data-field=title]")).includes("escalated to level 2"), "the alert reaches the manager's page and header without a reload");
  await photograph(manager, "alerts");
  const raisedAlert = manager.locator("li[data-kind='escalation']").first();
  await raisedAlert.locator("input[name=note]").fill("x".repeat(501));
  await Promise.all([manager.waitForNavigation(), raisedAlert.locator("button[value=acknowledge]").click()]);
  check((await manager.textContent("li[data-kind='escalation'] .field-error")).includes("at most 500"), "a note too long is refused beside the alert");
  await manager.locator("li[data-kind='escalation'] input[name=note]").fill("Calling the hospital.");
  await Promise.all([manager.waitForNavigation(), manager.locator("li[data-kind='escalation'] button[value=acknowledge]").click()]);
  check((await manager.locator("li[data-kind='escalation']").count()) === 0, "an acknowledged alert leaves the active ones");
  await manager.goto(`${base}/alerts?state=acknowledged`);
  check((await manager.textContent("li[data-kind='escalation'] [data-field=acknowledged]")).includes("Calling the hospital."), "it says who is on it, with the note");
  await Promise.all([manager.waitForNavigation(), manager.locator("li[data-kind='escalation'] button[value=resolve]").click()]);
  await manager.goto(`${base}/alerts?state=resolved`);
  check((await manager.locator("li[data-kind='escalation'][data-state=resolved]").count()) === 1, "and once resolved it is among the resolved");

  // ---- Automations: a rule built from rows of choices — a field's operators follow the field,
  // an action's inputs follow its type (swapped in without a page load), a mistake is shown
  // beside its row with its JSON path and what was typed kept — saved, tried on a ticket (what
  // held, what it would do), listed in order. ----
  await manager.goto(`${base}/settings/automations/new`);
  await manager.fill("#name", "Open tickets get a look");
  // A choice that changes what the form offers is answered with a fresh part (`aria-busy` while
  // it is on its way).
  const settled = () => manager.waitForSelector("[data-refresh-part]:not([aria-busy])");
  await manager.selectOption("select[name=all0_field]", "status");
  await settled();
  await manager.waitForFunction(() => [...document.querySelectorAll("select[name=all0_operator] option")].some((o) => o.value === "changed_to"));
  check(!(await manager.locator("select[name=all0_operator] option[value=contains]").count()), "a status offers only the operators a status takes");
  await manager.selectOption("select[name=all0_operator]", "is_not");
  // Typed while the answer to that choice is on its way: kept when the part is swapped.
  await manager.fill("input[name=all0_value]", "shut");
  await settled();
  check((await manager.inputValue("input[name=all0_value]")) === "shut", "what is typed while the form refreshes is kept");
  await manager.fill("input[name=act0_tags]", "looked-at");
  await Promise.all([manager.waitForNavigation(), manager.click(".actions button[value=save]")]);
  check((await manager.textContent("#all0-error")).includes("conditions.all[0].value") && (await manager.inputValue("input[name=all0_value]")) === "shut", "a mistake in a rule is shown beside its row with its path, what was typed kept");
  await manager.fill("input[name=all0_value]", "closed");
  await Promise.all([manager.waitForNavigation(), manager.click("button[value='add:actions']")]);
  check((await manager.locator("li[data-row=act1]").count()) === 1, "an action is added");
  await manager.selectOption("select[name=act1_type]", "raise_alert");
  await settled();
  await manager.waitForSelector("select[name=act1_severity]");
  await manager.selectOption("select[name=act1_severity]", "warning");
  await manager.fill("input[name=act1_title]", "A ticket needs a look");
  await Promise.all([manager.waitForNavigation(), manager.click(".actions button[value=save]")]);
  check((await manager.textContent("[role=status]")).includes("Saved") && (await manager.textContent("h1")).includes("Open tickets get a look"), "the rule is saved");
  check((await manager.inputValue("input[name=act0_tags]")) === "looked-at" && (await manager.inputValue("select[name=act1_severity]")) === "warning" && (await manager.textContent(".rule-json")).includes("\"raise_alert\""), "it reads back as built, and as the JSON the API takes");
  await manager.fill("#ticket", routedTicket);
  await Promise.all([manager.waitForNavigation(), manager.click("button[value=test]")]);
  check((await manager.textContent("[data-field=verdict]")).trim() === "it would act" && (await manager.textContent(".rule-test")).includes("looked-at"), "a test on a ticket says it would act, and how");
  await photograph(manager, "automation");
  await manager.goto(`${base}/settings/automations`);
  check((await manager.textContent("table.automations")).includes("Open tickets get a look"), "the rules are listed");
  await photograph(manager, "automations");

  // ---- The bell: a customer's reply on the agent's ticket counts up live; the notification
  // opens the ticket and is read since; a kind is switched off and stays off. ----
  await agent.goto(`${base}/tickets`);
  await agent.waitForSelector('html[data-live="open"]');
  const bellBefore = Number(await agent.getAttribute("#bell-count", "data-unread"));
  await customer.goto(portalTicketUrl);
  await customer.fill("#body", "Unplugged it; it still smells of smoke.");
  await Promise.all([customer.waitForNavigation(), customer.click("form[action$='/comments'] button[type=submit]")]);
  await agent.waitForFunction((before) => Number(document.getElementById("bell-count").getAttribute("data-unread")) > before, bellBefore, { timeout: 10000 });
  check(await agent.isVisible("#bell-count"), "the agent's bell counts the customer's reply without a reload");
  await Promise.all([agent.waitForNavigation(), agent.click("#bell")]);
  const replyNotice = agent.locator("li[data-kind='customer_reply']").first();
  check((await replyNotice.textContent()).includes("still smells of smoke"), "the notification quotes the reply");
  await photograph(agent, "notifications");
  await Promise.all([agent.waitForNavigation(), replyNotice.locator("button:has-text('Open the ticket')").click()]);
  check((await agent.textContent("h1")).includes(subject), "it opens the ticket");
  await agent.goto(`${base}/notifications?unread=1`);
  check((await agent.locator("li[data-kind='customer_reply']").count()) === 0, "and is read since");
  await agent.goto(`${base}/account/notifications`);
  await agent.uncheck("input[name='in_app.customer_reply']");
  await Promise.all([agent.waitForNavigation(), agent.click("main button[type=submit]")]);
  check((await agent.textContent("[role=status]")).includes("Saved") && !(await agent.isChecked("input[name='in_app.customer_reply']")), "a kind switched off stays off");
  await photograph(agent, "notification-preferences");

  // ---- Signing out ends the session. ----
  await Promise.all([agent.waitForNavigation(), agent.click("text=Sign out")]);
  check(agent.url().endsWith("/login"), "signing out leads to the sign-in page");
  await agent.goto(`${base}/tickets`);
  check(agent.url().endsWith("/login"), "the signed-out session no longer opens pages");
  await photograph(agent, "sign-in");

  // ---- Accessibility: axe-core on every page, signed in as each kind of person. The audit
  // context bypasses the CSP only so that axe itself can be injected. ----
  const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
  async function audit(page, name) {
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      const again = await page.evaluate(async () => await window.axe.run(document, { runOnly: ["color-contrast"] }));
      bad.push(...again.violations.filter((v) => v.impact === "serious" || v.impact === "critical"));
    }
    await page.emulateMedia({ colorScheme: "light" });
    const described = bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ");
    check(bad.length === 0, `axe finds no serious or critical violation on ${name}${described ? ": " + described : ""}`);
  }
  const auditSide = await context({ bypassCSP: true });
  const auditor = await auditSide.newPage();
  await auditor.goto(`${base}/login`);
  await audit(auditor, "the sign-in page");
  await auditor.goto(`${base}/register`);
  await audit(auditor, "the register page");
  await signIn(auditor, agentEmail, password);
  await audit(auditor, "the ticket list");
  await auditor.goto(ticketUrl);
  await audit(auditor, "the ticket page");
  await openRecord(auditor);
  await audit(auditor, "the ticket's record, opened");
  await auditor.goto(`${base}/work`);
  await audit(auditor, "my work");
  await auditor.goto(`${base}/notifications`);
  await audit(auditor, "the notifications");
  await auditor.goto(`${base}/account/notifications`);
  await audit(auditor, "what I am told of");
  const auditManagerSide = await context({ bypassCSP: true });
  const auditManager = await auditManagerSide.newPage();
  await signIn(auditManager, managerEmail, password);
  await auditManager.goto(`${base}/dashboard`);
  await audit(auditManager, "the dashboard");
  await auditManager.goto(`${base}/settings/sla`);
  await audit(auditManager, "the SLA policies");
  await auditManager.goto(`${base}/people`);
  await audit(auditManager, "agents and teams");
  await auditManager.goto(`${base}/settings/calendars`);
  await audit(auditManager, "the calendars");
  await auditManager.goto(`${base}/settings/escalation-rules`);
  await audit(auditManager, "the escalation rules");
  await auditManager.goto(`${base}/alerts?state=all`);
  await audit(auditManager, "the alerts");
  await auditManager.goto(`${base}/settings/automations`);
  await audit(auditManager, "the automations");
  await auditManager.goto(`${base}/settings/automations/new`);
  await audit(auditManager, "a new rule");
  const auditAdminSide = await context({ bypassCSP: true });
  const auditAdmin = await auditAdminSide.newPage();
  await signIn(auditAdmin, adminEmail, adminPassword);
  await auditAdmin.goto(`${base}/settings/users`);
  await audit(auditAdmin, "users and roles");
  await auditAdmin.goto(`${base}/account/api-keys`);
  await audit(auditAdmin, "the API keys");
  await auditAdmin.goto(`${base}/settings/webhooks`);
  await audit(auditAdmin, "the webhooks");
  await auditAdmin.goto(`${base}/settings/email`);
  await audit(auditAdmin, "the e-mail settings");
  await auditAdmin.goto(`${base}/settings/email/templates/public_reply`);
  await audit(auditAdmin, "a mail template");
  await auditAdmin.goto(`${base}/settings/email/outbox`);
  await audit(auditAdmin, "the outbox");
  const auditCustomerSide = await context({ bypassCSP: true });
  const auditCustomer = await auditCustomerSide.newPage();
  await signIn(auditCustomer, customerEmail, "password123");
  await audit(auditCustomer, "the portal");
  await auditCustomer.goto(`${base}/portal/new`);
  await audit(auditCustomer, "the new-ticket form");
  await auditCustomer.goto(portalTicketUrl);
  await audit(auditCustomer, "a customer's ticket page");

  check(consoleErrors.length === 0, `no page logged a console error${consoleErrors.length ? ": " + consoleErrors.join(" | ") : ""}`);
} catch (error) {
  if (!failed) {
    console.log(`FAIL ${error.message}`);
  }
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
