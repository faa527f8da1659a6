import { errors } from './errors';

/**
 * Where the AWS providers of a mesh's stacks send their calls: AWS itself, or an AWS-compatible endpoint such as
 * LocalStack (`MeshformAws.endpoint('http://localhost:4566')`) for an integration run. With an endpoint, every
 * AWS provider gets the endpoint for each service meshform uses and the skips an emulator needs (credentials
 * validation, instance metadata, region validation, path-style S3; the account id is asked of the endpoint); nothing else in the
 * stacks changes. Credentials come from the environment as usual (an emulator takes any, e.g. "test").
 */
export abstract class MeshformAws {
  /** Real AWS: the providers' own endpoints. */
  public static standard(): MeshformAws {
    return new StandardAws();
  }

  /** An AWS-compatible endpoint for every service (e.g. LocalStack on `http://localhost:4566`). */
  public static endpoint(url: string): MeshformAws {
    return new EndpointAws(url);
  }

  /** `MESHFORM_AWS_ENDPOINT` when it is set, else real AWS. */
  public static fromEnvironment(): MeshformAws {
    const url = process.env.MESHFORM_AWS_ENDPOINT;
    return url ? new EndpointAws(url) : new StandardAws();
  }

  /** The endpoint, when one is used. */
  public abstract get url(): string | undefined;

  /** Checks the setting; throws a MeshformError naming `path`. */
  public abstract validate(path: string): void;
}

class StandardAws extends MeshformAws {
  public get url(): string | undefined {
    return undefined;
  }

  public validate(): void {}
}

class EndpointAws extends MeshformAws {
  constructor(private readonly endpoint: string) {
    super();
  }

  public get url(): string | undefined {
    return this.endpoint;
  }

  public validate(path: string): void {
    let parsed: URL | undefined;
    try {
      parsed = new URL(this.endpoint);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.pathname.length > 1) {
      throw errors.invalidValue(
        path,
        'AWS endpoint',
        this.endpoint,
        'give an http(s) URL without a path, e.g. "http://localhost:4566"',
      );
    }
  }
}
