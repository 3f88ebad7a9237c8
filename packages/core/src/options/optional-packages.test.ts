import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../errors";
import { loadOptionalPackages } from "./optional-packages";

describe("loadOptionalPackages", () => {
  it("loads installed packages", async () => {
    const [acorn] = await loadOptionalPackages("parsing", [["acorn", () => import("acorn")]]);
    expect(typeof acorn.parse).toBe("function");
  });

  it("names every missing package in one ConfigurationError with the install command", async () => {
    const first = "streamll-package-that-is-not-installed";
    const second = "@streamll/another-package-that-is-not-installed";
    const error = await loadOptionalPackages("ElastiCache IAM authentication", [
      [first, () => import(/* @vite-ignore */ first)],
      ["acorn", () => import("acorn")],
      [second, () => import(/* @vite-ignore */ second)],
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).message).toBe(
      `ElastiCache IAM authentication needs the optional packages ${first}, ${second}, not installed: npm install ${first} ${second}`,
    );
    expect((error as ConfigurationError).fix).toBe(`npm install ${first} ${second}`);
    expect((error as ConfigurationError).issues.map((issue) => issue.path)).toEqual([first, second]);
  });

  it("rethrows a package that fails for another reason", async () => {
    const failure = new Error("boom");
    await expect(loadOptionalPackages("x", [["broken", () => Promise.reject(failure)]])).rejects.toBe(
      failure,
    );
  });
});
