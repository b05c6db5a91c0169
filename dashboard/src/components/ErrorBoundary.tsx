import { Component, type ErrorInfo, type ReactNode } from "react";

/** Keeps one broken screen from blanking the whole dashboard; the header and socket stay up. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error("screen crashed", error, info.componentStack);
  }

  override componentDidUpdate(previous: { resetKey?: string }): void {
    if (previous.resetKey !== this.props.resetKey && this.state.error !== null) this.setState({ error: null });
  }

  override render() {
    if (this.state.error !== null) {
      return (
        <div className="empty-state" role="alert">
          This screen failed: {this.state.error.message}
        </div>
      );
    }
    return this.props.children;
  }
}
