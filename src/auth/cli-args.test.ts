import { describe, expect, it } from "vitest";
import { CommandError, parseCommand } from "./cli-args.ts";

const refusal = (argv: string[]) => {
  try {
    parseCommand(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(CommandError);
    return error as CommandError;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
};

describe("parseCommand", () => {
  it("parses create with every option", () => {
    const argv = ["create", "--scope", "ingest", "--name", "web", "--origin", "https://a.example"];
    const clicks = ["--click-domain", "Shop.example", "--click-domain=*.cdn.example, 127.0.0.1"];
    expect(
      parseCommand([...argv, "--origin", "http://localhost:8080", "--rate", "500", "--signed", "--browser", ...clicks]),
    ).toEqual({
      command: "create",
      scope: "ingest",
      name: "web",
      origins: ["https://a.example", "http://localhost:8080"],
      rate: 500,
      signed: true,
      browser: true,
      ads: [],
      clickDomains: ["shop.example", "*.cdn.example", "127.0.0.1"],
    });
    expect(parseCommand(["create", "--scope=query", "--name=dash"])).toEqual({
      command: "create",
      scope: "query",
      name: "dash",
      origins: [],
      rate: undefined,
      signed: false,
      browser: false,
      ads: [],
      clickDomains: [],
    });
    const tenant = ["create", "--scope=query", "--name=acme", "--ads", "acme-*", "--ads=acme:eu-*, beta", "--rate=3"];
    expect(parseCommand(tenant)).toMatchObject({ scope: "query", rate: 3, ads: ["acme-*", "acme:eu-*", "beta"] });
  });

  it("parses list, revoke and help", () => {
    expect(parseCommand(["list"])).toEqual({ command: "list" });
    expect(parseCommand(["revoke", "web"])).toEqual({ command: "revoke", name: "web" });
    expect(parseCommand(["--help"])).toEqual({ command: "help" });
    expect(parseCommand(["create", "-h"])).toEqual({ command: "help" });
  });

  it("names the wrong value of create", () => {
    const create = (...rest: string[]) => refusal(["create", "--scope", "ingest", "--name", "web", ...rest]).message;
    expect(refusal(["create", "--scope", "admin", "--name", "web"]).message).toBe(
      '--scope must be one of ingest, query, got "admin"',
    );
    expect(refusal(["create", "--name", "web"]).message).toBe("--scope must be one of ingest, query");
    expect(refusal(["create", "--scope", "ingest"]).message).toBe("--name is required");
    expect(refusal(["create", "--scope", "ingest", "--name", "a/b"]).message).toMatch('--name "a/b": must be 1-64');
    expect(create("--origin", "https://A.example/")).toBe(
      '--origin "https://A.example/": must be a URL origin like https://a.example; did you mean "https://a.example"?',
    );
    expect(create("--origin", "a.example")).toBe('--origin "a.example": must be a URL origin like https://a.example');
    for (const domain of ["https://shop.example", "shop.example/", "*", "*.", "a..b"]) {
      expect(create("--click-domain", domain)).toBe(
        `--click-domain "${domain}": must be a host name like shop.example, or *.shop.example for its subdomains`,
      );
    }
    for (const rate of ["0", "-1", "1.5", "abc", "1e3", "99999999999999999"]) {
      expect(create(`--rate=${rate}`)).toMatch(`--rate "${rate}": must be a positive whole number`);
    }
  });

  it("keeps origins, signing and --browser to ingest keys, ads to query keys", () => {
    const query = ["create", "--scope", "query", "--name", "dash"];
    expect(refusal([...query, "--origin", "https://a.example"]).message).toBe(
      "--origin is only for ingest keys (--scope ingest)",
    );
    expect(refusal([...query, "--signed"]).message).toMatch("--signed is only for ingest keys");
    expect(refusal([...query, "--browser"]).message).toMatch("--browser is only for ingest keys");
    expect(refusal([...query, "--click-domain", "shop.example"]).message).toMatch(
      "--click-domain is only for ingest keys",
    );
    expect(refusal([...query, "--rate", "0"]).message).toMatch(
      '--rate "0": must be a positive whole number of requests',
    );
    expect(refusal(["create", "--scope=ingest", "--name=x", "--ads=a-*"]).message).toBe(
      "--ads is only for query keys (--scope query)",
    );
    for (const pattern of ["acme %", "a_b?", "", "acme/*"]) {
      expect(refusal([...query, `--ads=${pattern}`]).message).toMatch(`--ads "${pattern}": must be ad id characters`);
    }
  });

  it("answers the usage to a missing or unknown command, option or argument", () => {
    for (const argv of [[], ["rotate"], ["list", "--scope", "ingest"], ["list", "x"], ["revoke"], ["list", "--x"]]) {
      expect(refusal(argv).showUsage).toBe(true);
    }
    expect(refusal(["rotate"]).message).toBe('unknown command "rotate"');
    expect(refusal(["revoke", "a", "b"]).message).toBe("revoke takes one NAME");
  });
});
